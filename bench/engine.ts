// Engine overhead: items per second through a bounded-channel pipeline (source → map → sink) for
// several buffer sizes, and the time to load and validate a graph. `npm run bench -- engine`
import { map } from 'rxjs';
import { z } from 'zod';
import { loadGraphText } from '../core/graph/load.js';
import { defineNode, definePlugin, PLUGIN_API_VERSION, streamPort } from '../core/plugin.js';
import { NodeRegistry } from '../core/registry.js';
import { fromIterableWithBackpressure } from '../core/runtime/operators/from-iterable.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
import { runGraph } from '../core/runtime/run-graph.js';

const numbers = streamPort<number>('numbers');
const source = defineNode({
  type: 'source', version: 1, inputs: {}, outputs: { items: { type: numbers } },
  config: z.strictObject({ n: z.number().int() }),
  run: (ctx) => ({ items: fromIterableWithBackpressure((function* () { for (let i = 0; i < ctx.config.n; i++) yield i; })(), () => ctx.outputReady()) }),
});
const inc = defineNode({
  type: 'inc', version: 1, inputs: { items: { type: numbers } }, outputs: { items: { type: numbers } },
  config: z.strictObject({}), run: (_ctx, inputs) => ({ items: inputs.items.pipe(map((x) => x + 1)) }),
});
const sink = defineNode({
  type: 'sink', version: 1, inputs: { items: { type: numbers } }, outputs: {},
  config: z.strictObject({ async: z.boolean().default(false) }),
  run: (ctx, inputs) => ({ done: ctx.config.async ? inputs.items.pipe(mapAsync(async (x) => x)) : inputs.items }),
});

export async function run(log: (line: string) => void = console.log): Promise<void> {
  const registry = new NodeRegistry();
  registry.register(definePlugin({ name: 'core', apiVersion: PLUGIN_API_VERSION, nodes: [source, inc, sink] }), 'bench');
  const n = 100_000;
  for (const asyncSink of [false, true]) {
    for (const buffer of [1, 2, 16, 256]) {
      const text = `apiVersion: grpoflow/v1\nkind: Graph\nmetadata: { name: bench }\nnodes:\n  src: { type: source, with: { n: ${n} } }\n  inc: { type: inc, buffer: ${buffer}, in: { items: src.items } }\n  out: { type: sink, buffer: ${buffer}, with: { async: ${asyncSink} }, in: { items: inc.items } }\n`;
      const t0 = performance.now();
      const { graph } = await loadGraphText(text, 'bench.yaml', { registry, env: {} });
      const t1 = performance.now();
      await runGraph(graph!, { outDir: '/tmp' }).done;
      const t2 = performance.now();
      log(`${asyncSink ? 'mapAsync sink' : 'sync sink    '} buffer ${String(buffer).padStart(3)}: ${Math.round(n / ((t2 - t1) / 1000)).toLocaleString('en')} items/s (load+validate ${(t1 - t0).toFixed(1)} ms)`);
    }
  }
}
