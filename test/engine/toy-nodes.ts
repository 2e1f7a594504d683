// Toy nodes for the engine tests: small, deterministic, and instrumented through `services.probe`.
import { delay, map, merge as mergeStreams, of, startWith, tap, timer, withLatestFrom, take } from 'rxjs';
import { z } from 'zod';
import { defineNode, definePlugin, latestPort, PLUGIN_API_VERSION, resourcePort, streamPort } from '../../core/plugin.js';
import { NodeRegistry } from '../../core/registry.js';
import { fromIterableWithBackpressure } from '../../core/runtime/operators/from-iterable.js';
import { mapAsync } from '../../core/runtime/operators/map-async.js';

/** What the toy nodes record while they run. */
export interface Probe {
  produced: Record<string, number>;
  started: Record<string, number>;
  /** Items produced by every `count` minus items started by every `slow-sink`, at each production. */
  lead: number[];
  startedTotal: number;
  producedTotal: number;
  torndown: string[];
  received: Record<string, unknown[]>;
}
export function newProbe(): Probe {
  return { produced: {}, started: {}, lead: [], startedTotal: 0, producedTotal: 0, torndown: [], received: {} };
}
const probeOf = (services: Record<string, unknown>) => services.probe as Probe;

export const numbers = streamPort<number>('numbers');
export const texts = streamPort<string>('texts');
export const toyModel = resourcePort<{ scale: number }>('toy-model');
export const weights = latestPort<number>('toy-weights');

const recordTeardown = (ctx: { id: string; services: Record<string, unknown>; onTeardown(fn: () => void): void }) =>
  ctx.onTeardown(() => probeOf(ctx.services).torndown.push(ctx.id));

export const count = defineNode({
  type: 'count',
  version: 1,
  inputs: {},
  outputs: { items: { type: numbers } },
  config: z.strictObject({ n: z.number().int().min(0), start: z.number().int().default(0) }),
  run(ctx) {
    recordTeardown(ctx);
    const probe = probeOf(ctx.services);
    const values = Array.from({ length: ctx.config.n }, (_, i) => ctx.config.start + i);
    return {
      items: fromIterableWithBackpressure(values, () => ctx.outputReady()).pipe(
        tap(() => {
          probe.produced[ctx.id] = (probe.produced[ctx.id] ?? 0) + 1;
          probe.producedTotal++;
          probe.lead.push(probe.producedTotal - probe.startedTotal);
        }),
      ),
    };
  },
});

export const double = defineNode({
  type: 'double',
  version: 1,
  inputs: { items: { type: numbers } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(ctx, inputs) {
    recordTeardown(ctx);
    return { items: inputs.items.pipe(map((x) => x * 2)) };
  },
});

export const slowSink = defineNode({
  type: 'slow-sink',
  version: 1,
  inputs: { items: { type: numbers } },
  outputs: {},
  config: z.strictObject({ delayMs: z.number().min(0).default(5), label: z.string().default('sink'), take: z.number().int().positive().optional() }),
  run(ctx, inputs) {
    recordTeardown(ctx);
    const probe = probeOf(ctx.services);
    const got: unknown[] = (probe.received[ctx.id] = []);
    return {
      done: inputs.items.pipe(
        ctx.config.take === undefined ? (items) => items : take(ctx.config.take),
        mapAsync((x) => {
          probe.started[ctx.id] = (probe.started[ctx.id] ?? 0) + 1;
          probe.startedTotal++;
          got.push(x);
          return timer(ctx.config.delayMs).pipe(map(() => x));
        }),
      ),
    };
  },
});

export const fail = defineNode({
  type: 'fail',
  version: 1,
  inputs: { items: { type: numbers } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({ at: z.number().int().default(2) }),
  run(ctx, inputs) {
    recordTeardown(ctx);
    return {
      items: inputs.items.pipe(
        map((x) => {
          if (x === ctx.config.at) throw new Error(`boom at ${x}`);
          return x;
        }),
      ),
    };
  },
});

export const forever = defineNode({
  type: 'forever',
  version: 1,
  inputs: {},
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(ctx) {
    recordTeardown(ctx);
    async function* ticks() {
      for (let i = 0; ; i++) {
        await new Promise((r) => setTimeout(r, 1));
        yield i;
      }
    }
    return { items: fromIterableWithBackpressure(ticks(), () => ctx.outputReady()) };
  },
});

export const words = defineNode({
  type: 'words',
  version: 1,
  inputs: {},
  outputs: { items: { type: texts } },
  config: z.strictObject({ list: z.array(z.string()).default(['a', 'b']) }),
  run(ctx) {
    return { items: of(...ctx.config.list) };
  },
});

export const loadModel = defineNode({
  type: 'load-model',
  version: 1,
  inputs: {},
  outputs: { model: { type: toyModel } },
  config: z.strictObject({ scale: z.number().default(3), failWith: z.string().optional() }),
  run(ctx) {
    recordTeardown(ctx);
    if (ctx.config.failWith) throw new Error(ctx.config.failWith);
    return { model: of({ scale: ctx.config.scale }).pipe(delay(1)) };
  },
});

export const scale = defineNode({
  type: 'scale',
  version: 1,
  inputs: { model: { type: toyModel }, items: { type: numbers } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(ctx, inputs) {
    recordTeardown(ctx);
    const { scale } = inputs.model;
    return { items: inputs.items.pipe(map((x) => x * scale)) };
  },
});

/** Sums its inputs (several edges) into one stream. */
export const merge = defineNode({
  type: 'merge',
  version: 1,
  inputs: { items: { type: numbers, multiple: true } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(_ctx, inputs) {
    return { items: mergeStreams(...inputs.items) };
  },
});

/** Generator: tags each item with the latest fed-back weight (0 before any). */
export const generator = defineNode({
  type: 'generator',
  version: 1,
  inputs: { items: { type: numbers }, policy: { type: weights, feedback: true, optional: true } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(ctx, inputs) {
    recordTeardown(ctx);
    const policy$ = (inputs.policy ?? of(0)).pipe(startWith(0));
    return { items: inputs.items.pipe(withLatestFrom(policy$), map(([x, w]) => x * 1000 + w)) };
  },
});

/** Trainer: publishes a metric per item and feeds back a new weight. */
export const trainer = defineNode({
  type: 'trainer',
  version: 1,
  inputs: { items: { type: numbers } },
  outputs: { policy: { type: weights } },
  config: z.strictObject({}),
  run(ctx, inputs) {
    recordTeardown(ctx);
    const probe = probeOf(ctx.services);
    const got: unknown[] = (probe.received[ctx.id] = []);
    let step = 0;
    return {
      policy: inputs.items.pipe(
        mapAsync((x) => timer(2).pipe(map(() => x))),
        tap((x) => got.push(x)),
        map(() => {
          step++;
          ctx.metrics.publish(step, { loss: 1 / step });
          return step;
        }),
      ),
    };
  },
});

/** A latest-port consumer that is not declared feedback (closing a cycle with it is illegal). */
export const echoLatest = defineNode({
  type: 'echo-latest',
  version: 1,
  inputs: { items: { type: numbers }, policy: { type: weights, optional: true } },
  outputs: { items: { type: numbers } },
  config: z.strictObject({}),
  run(_ctx, inputs) {
    return { items: inputs.items };
  },
});

export const countV2 = defineNode({ ...count, version: 2 });

export const toyNodes = [count, countV2, double, slowSink, fail, forever, words, loadModel, scale, merge, generator, trainer, echoLatest];

/** A registry with the toy nodes as the built-in (`core`) plugin. */
export function toyRegistry(): NodeRegistry {
  const registry = new NodeRegistry();
  registry.register(definePlugin({ name: 'core', apiVersion: PLUGIN_API_VERSION, nodes: toyNodes }), 'toy nodes');
  return registry;
}

/** A graph file around `nodes` (YAML text, indented by 2). */
export function graphYaml(nodes: string, extra = ''): string {
  return `apiVersion: grpoflow/v1\nkind: Graph\nmetadata:\n  name: test\n${extra}nodes:\n${nodes}`;
}
