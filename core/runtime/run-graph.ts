// Runs a validated graph. Each node: setup (wait for its resource inputs) → run (inputs in, outputs
// out as Observables) → teardown. Stream edges are bounded channels; `latest` edges (the trainer's
// weights fed back to the generator) are replay-latest subjects; resources are resolved once and
// shared. The run ends when every sink has completed, a node fails, or it is aborted; then every
// node is torn down, in reverse start order.
import type { EngineServices } from '../engine/model-engine.js';
import { from, isObservable, type Observable, ReplaySubject, take, tap, type Subscription } from 'rxjs';
import type { InputSpec, NodeContext, OutputSpec, Services } from '../plugin.js';
import type { ResolvedEdge, ResolvedGraph, ResolvedNode } from '../graph/resolved.js';
import { BoundedChannel } from './channel.js';
import { OutputGate } from './gate.js';
import { MetricsBus, type EventRecord } from './metrics-bus.js';
import type { MetricRecord } from '../ports.js';
import { NodeStateTracker, type NodeStates } from './node-state.js';

export interface RunOptions {
  /** The run's output folder, handed to nodes as `ctx.outDir`. */
  outDir: string;
  services?: Services;
  /** Aborting it stops the run, like `handle.abort()`. */
  signal?: AbortSignal;
  /** A bus to publish on (the CLI creates it first so writers see every record); a new one otherwise. */
  bus?: MetricsBus;
}

export interface RunResult {
  status: 'completed' | 'aborted';
  durationMs: number;
}

export interface RunHandle {
  metrics$: Observable<MetricRecord>;
  events$: Observable<EventRecord>;
  nodeStates$: Observable<NodeStates>;
  /** Resolves when the run completed or was aborted (after teardown); rejects with NodeRunError. */
  done: Promise<RunResult>;
  abort(reason?: string): void;
}

/** A node failed: names the node and keeps the cause. */
export class NodeRunError extends Error {
  constructor(
    readonly nodeId: string,
    readonly nodeType: string,
    override readonly cause: unknown,
  ) {
    super(`node \`${nodeId}\` (${nodeType}) failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'NodeRunError';
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // a rejection is handled where it is awaited, or the run is already failing
  return { promise, resolve, reject };
}

const outKey = (node: string, port: string) => `${node}.${port}`;

export function runGraph(graph: ResolvedGraph, options: RunOptions): RunHandle {
  const started = Date.now();
  const controller = new AbortController();
  const bus = options.bus ?? new MetricsBus();
  const tracker = new NodeStateTracker(graph.nodes);
  // Nodes find the registered rollout engines by name here (rollout.generate's `engine`).
  const services: Services = {
    rolloutEngines: (name: string) => graph.registry.engine(name)?.def,
    modelEngines: (name: string) => graph.registry.modelEngine(name)?.def,
    ...(options.services ?? {}),
  } satisfies EngineServices;

  // Wiring, created before any node runs so feedback edges have somewhere to land.
  const gates = new Map(graph.nodes.map((n) => [n.id, new OutputGate()]));
  const channelsByOutput = new Map<string, BoundedChannel<unknown>[]>();
  const channelByEdge = new Map<ResolvedEdge, BoundedChannel<unknown>>();
  const latestByOutput = new Map<string, ReplaySubject<unknown>>();
  const resourceByOutput = new Map<string, Deferred<unknown>>();
  for (const edge of graph.edges) {
    const key = outKey(edge.from.node, edge.from.port);
    if (edge.kind === 'stream') {
      const channel = new BoundedChannel<unknown>(edge.buffer, `${key} -> ${edge.to.node}.${edge.to.port}`);
      channel.attachProducerGate(gates.get(edge.from.node)!);
      channelByEdge.set(edge, channel);
      if (!channelsByOutput.has(key)) channelsByOutput.set(key, []);
      channelsByOutput.get(key)!.push(channel);
      const queueName = edgeQueueName(graph, edge);
      channel.onChange((s) =>
        tracker.update(edge.to.node, (st) => ({
          queues: { ...st.queues, [queueName]: { from: key, depth: s.depth, capacity: s.capacity } },
        })),
      );
      tracker.update(edge.to.node, (st) => ({ queues: { ...st.queues, [queueName]: { from: key, depth: 0, capacity: edge.buffer } } }));
    } else if (edge.kind === 'latest') {
      if (!latestByOutput.has(key)) latestByOutput.set(key, new ReplaySubject<unknown>(1));
    } else if (!resourceByOutput.has(key)) resourceByOutput.set(key, deferred<unknown>());
  }
  const sinks = graph.nodes.filter((n) => !graph.edges.some((e) => e.from.node === n.id && e.kind === 'stream' && !e.feedback));

  const subscriptions: Subscription[] = [];
  const teardowns = new Map<string, (() => void | Promise<void>)[]>();
  const startOrder: string[] = [];
  const nodeDone = new Map(graph.nodes.map((n) => [n.id, deferred<void>()]));
  let finished = false;
  const outcome = deferred<RunResult>();

  const finish = async (status: RunResult['status'] | 'failed', error?: NodeRunError): Promise<void> => {
    if (finished) return;
    finished = true;
    controller.abort(error ?? new Error(status === 'aborted' ? 'run aborted' : 'run completed'));
    if (error) bus.event('graph', 'error', error.message, { node: error.nodeId });
    else bus.event('graph', status === 'aborted' ? 'warn' : 'info', `run ${status}`);
    for (const sub of subscriptions) sub.unsubscribe();
    for (const channel of channelByEdge.values()) channel.close();
    for (const node of graph.nodes) {
      const st = tracker.snapshot()[node.id];
      // A completed run stops its endless sources (a synthetic dataset) on purpose: they are done, not cancelled.
      if (st.status === 'running' || st.status === 'idle') tracker.update(node.id, () => ({ status: status === 'completed' ? 'done' : 'cancelled' }));
    }
    // Teardown: every node that started, in reverse start order; each node's hooks in reverse order.
    for (const id of [...startOrder].reverse()) {
      for (const fn of [...(teardowns.get(id) ?? [])].reverse()) {
        try {
          await fn();
        } catch (cause) {
          bus.event(id, 'error', `teardown failed: ${cause instanceof Error ? cause.message : String(cause)}`);
        }
      }
    }
    tracker.complete();
    bus.complete();
    const durationMs = Date.now() - started;
    if (error) outcome.reject(error);
    else outcome.resolve({ status: status as RunResult['status'], durationMs });
  };

  const fail = (node: ResolvedNode, cause: unknown): void => {
    if (finished) return;
    const error = cause instanceof NodeRunError ? cause : new NodeRunError(node.id, node.type, cause);
    tracker.update(node.id, () => ({ status: 'failed', error: error.message }));
    void finish('failed', error);
  };

  const startNode = async (node: ResolvedNode): Promise<void> => {
    const def = node.node.def;
    const inputSpecs = def.inputs as Record<string, InputSpec>;
    const outputSpecs = def.outputs as Record<string, OutputSpec>;
    const gate = gates.get(node.id)!;

    // Setup: resources arrive resolved.
    const inputs: Record<string, unknown> = {};
    for (const [port, spec] of Object.entries(inputSpecs)) {
      const edges = node.inputs[port] ?? [];
      const values = await Promise.all(
        edges.map(async (edge) => {
          const key = outKey(edge.from.node, edge.from.port);
          if (edge.kind === 'resource') return resourceByOutput.get(key)!.promise;
          if (edge.kind === 'latest') return latestByOutput.get(key)!.asObservable();
          const channel = channelByEdge.get(edge)!;
          return channel.observable(gate).pipe(tap(() => tracker.update(node.id, (s) => ({ itemsIn: s.itemsIn + 1 }))));
        }),
      );
      if (finished) return;
      inputs[port] = spec.multiple ? values : values[0];
    }

    startOrder.push(node.id);
    tracker.update(node.id, () => ({ status: 'running' }));
    const hooks: (() => void | Promise<void>)[] = [];
    teardowns.set(node.id, hooks);
    const ctx: NodeContext<unknown> = {
      id: node.id,
      config: node.config,
      signal: controller.signal,
      metrics: bus.publisher(node.id),
      outDir: options.outDir,
      baseDir: graph.baseDir,
      services,
      onTeardown: (fn) => hooks.push(fn),
      outputReady: () => gate.whenOpen(controller.signal),
    };

    const returned = (await def.run(ctx, inputs as never)) as Record<string, unknown> | undefined;
    if (finished) return;
    const outputs = returned ?? {};
    for (const name of Object.keys(outputs)) {
      if (name !== 'done' && !(name in outputSpecs)) {
        throw new Error(`run() returned output \`${name}\`, which the node does not declare (outputs: ${Object.keys(outputSpecs).join(', ') || 'none'})`);
      }
    }

    const pending: Promise<void>[] = [];
    const watch = (source: Observable<unknown>, handlers: { next(v: unknown): void; complete(): void }) => {
      const done = deferred<void>();
      pending.push(done.promise);
      subscriptions.push(
        source.subscribe({
          next: (v) => handlers.next(v),
          error: (e) => {
            fail(node, e);
            done.reject(e);
          },
          complete: () => {
            handlers.complete();
            done.resolve();
          },
        }),
      );
    };

    for (const [name, spec] of Object.entries(outputSpecs)) {
      const key = outKey(node.id, name);
      const output = outputs[name];
      const channels = channelsByOutput.get(key) ?? [];
      const latest = latestByOutput.get(key);
      const resource = resourceByOutput.get(key);
      if (output === undefined) {
        // Not produced: consumers see an empty stream, and a resource consumer fails clearly.
        for (const c of channels) c.complete();
        latest?.complete();
        resource?.reject(new Error(`node \`${node.id}\` did not return its output \`${name}\``));
        continue;
      }
      if (!isObservable(output)) throw new Error(`run() returned output \`${name}\` that is not an Observable`);
      if (spec.type.kind === 'resource') {
        let got = false;
        watch(output.pipe(take(1)), {
          next: (v) => {
            got = true;
            tracker.update(node.id, (s) => ({ itemsOut: s.itemsOut + 1 }));
            resource?.resolve(v);
          },
          complete: () => {
            if (!got) fail(node, new Error(`resource output \`${name}\` completed without a value`));
          },
        });
      } else {
        watch(output, {
          next: (v) => {
            tracker.update(node.id, (s) => ({ itemsOut: s.itemsOut + 1 }));
            for (const c of channels) c.push(v);
            latest?.next(v);
          },
          complete: () => {
            for (const c of channels) c.complete();
            latest?.complete();
          },
        });
      }
    }
    const done = outputs.done;
    if (done !== undefined) {
      const done$ = isObservable(done) ? done : done instanceof Promise ? from(done) : undefined;
      if (!done$) throw new Error('run() returned `done` that is neither an Observable nor a Promise');
      watch(done$, { next: () => {}, complete: () => {} });
    }
    await Promise.all(pending);
    if (finished) return;
    tracker.update(node.id, () => ({ status: 'done' }));
    bus.event(node.id, 'debug', 'node done');
    nodeDone.get(node.id)!.resolve();
  };

  const onExternalAbort = () => void finish('aborted');
  if (options.signal?.aborted) queueMicrotask(onExternalAbort);
  else options.signal?.addEventListener('abort', onExternalAbort, { once: true });

  // Start on the next microtask, so that whoever holds the handle has subscribed to every event.
  queueMicrotask(() => {
    if (finished) return;
    bus.event('graph', 'info', `run started: ${graph.name}`, { nodes: graph.nodes.length });
    for (const node of graph.nodes) startNode(node).catch((cause) => fail(node, cause));
  });
  Promise.all(sinks.map((s) => nodeDone.get(s.id)!.promise)).then(
    () => finish('completed'),
    () => {},
  );

  return {
    metrics$: bus.metrics$,
    events$: bus.events$,
    nodeStates$: tracker.states$,
    done: outcome.promise.finally(() => options.signal?.removeEventListener('abort', onExternalAbort)),
    abort: () => void finish('aborted'),
  };
}

function edgeQueueName(graph: ResolvedGraph, edge: ResolvedEdge): string {
  const consumer = graph.nodes.find((n) => n.id === edge.to.node)!;
  const spec = (consumer.node.def.inputs as Record<string, InputSpec>)[edge.to.port];
  return spec?.multiple ? `${edge.to.port}[${edge.index}]` : edge.to.port;
}
