import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { loadGraphText } from '../../core/graph/load.js';
import type { ResolvedGraph } from '../../core/graph/resolved.js';
import { MetricsBus } from '../../core/runtime/metrics-bus.js';
import type { NodeStates } from '../../core/runtime/node-state.js';
import { NodeRunError, runGraph } from '../../core/runtime/run-graph.js';
import { writeEventsLog, writeMetricsJsonl } from '../../core/runtime/writers.js';
import { graphYaml, newProbe, toyRegistry, type Probe } from './toy-nodes.js';

async function graphOf(nodes: string): Promise<ResolvedGraph> {
  const { graph, diagnostics } = await loadGraphText(graphYaml(nodes), 'g.yaml', { registry: toyRegistry(), env: {} });
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return graph!;
}
function start(graph: ResolvedGraph, probe: Probe, signal?: AbortSignal) {
  return runGraph(graph, { outDir: os.tmpdir(), services: { probe }, signal });
}
const src = (n: number, id = 'src', buffer = '') => `  ${id}:\n    type: count\n    version: 1\n${buffer}    with: { n: ${n} }\n`;

describe('runtime', () => {
  it('runs a graph to completion, through a resource, and tears every node down in reverse start order', async () => {
    const graph = await graphOf(`${src(4)}  model:\n    type: load-model\n  scale:\n    type: scale\n    in: { model: model.model, items: src.items }\n  sink:\n    type: slow-sink\n    with: { delayMs: 0 }\n    in: { items: scale.items }\n`);
    const probe = newProbe();
    const handle = start(graph, probe);
    const events = lastValueFrom(handle.events$.pipe(toArray()));
    const result = await handle.done;
    expect(result.status).toBe('completed');
    // Subscribing right after runGraph() returns misses nothing.
    expect((await events).map((e) => e.message)[0]).toBe('run started: test');
    expect(probe.received.sink).toEqual([0, 3, 6, 9]);
    expect(probe.torndown.sort()).toEqual(['model', 'scale', 'sink', 'src']);
    // `scale` starts only once the model resource resolved, after `src` and `model`; it is torn down before them.
    expect(probe.torndown.indexOf('scale')).toBeLessThan(probe.torndown.indexOf('src'));
  });

  it('a failing node stops the graph: the error names the node and the cause, every started node is torn down', async () => {
    const graph = await graphOf(`${src(10)}  boom:\n    type: fail\n    with: { at: 3 }\n    in: { items: src.items }\n  sink:\n    type: slow-sink\n    with: { delayMs: 1 }\n    in: { items: boom.items }\n`);
    const probe = newProbe();
    const handle = start(graph, probe);
    const states: NodeStates[] = [];
    handle.nodeStates$.subscribe((s) => states.push(s));
    const error = await handle.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NodeRunError);
    expect((error as NodeRunError).nodeId).toBe('boom');
    expect((error as NodeRunError).message).toBe('node `boom` (fail) failed: boom at 3');
    expect(((error as NodeRunError).cause as Error).message).toBe('boom at 3');
    expect(probe.torndown.sort()).toEqual(['boom', 'sink', 'src']);
    // The sink saw a prefix of the items before the failure, never the failing one or later.
    const seen = probe.received.sink as number[];
    expect(seen).toEqual([0, 1, 2].slice(0, seen.length));
    const last = states[states.length - 1];
    expect(last.boom.status).toBe('failed');
    expect(last.sink.status).toBe('cancelled');
  });

  it('a run that completes while a source could go on marks the source done, not cancelled', async () => {
    const graph = await graphOf(`  src:\n    type: forever\n  sink:\n    type: slow-sink\n    with: { delayMs: 0, take: 3 }\n    in: { items: src.items }\n`);
    const handle = start(graph, newProbe());
    const states: NodeStates[] = [];
    handle.nodeStates$.subscribe((s) => states.push(s));
    expect((await handle.done).status).toBe('completed');
    expect(states.at(-1)!.src.status).toBe('done');
  });

  it('a node whose setup throws fails the graph with its id', async () => {
    const graph = await graphOf(`${src(3)}  model:\n    type: load-model\n    with: { failWith: "no weights file" }\n  scale:\n    type: scale\n    in: { model: model.model, items: src.items }\n`);
    const error = (await start(graph, newProbe()).done.catch((e: unknown) => e)) as NodeRunError;
    expect(error.nodeId).toBe('model');
    expect(error.message).toContain('no weights file');
  });

  it('cancellation: aborting the signal stops an endless source, tears down, resolves as aborted', async () => {
    const graph = await graphOf(`  src:\n    type: forever\n  sink:\n    type: slow-sink\n    with: { delayMs: 1 }\n    in: { items: src.items }\n`);
    const probe = newProbe();
    const controller = new AbortController();
    const handle = start(graph, probe, controller.signal);
    await new Promise<void>((resolve) => {
      const sub = handle.nodeStates$.subscribe((s) => {
        if (s.sink.itemsIn >= 3) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    controller.abort();
    const result = await handle.done;
    expect(result.status).toBe('aborted');
    expect(probe.torndown.sort()).toEqual(['sink', 'src']);
  });

  it('backpressure: a fast producer is never more than `buffer` items ahead of a slow consumer', async () => {
    for (const buffer of [1, 3]) {
      const graph = await graphOf(`${src(12, 'src', `    buffer: 99\n`)}  sink:\n    type: slow-sink\n    buffer: ${buffer}\n    with: { delayMs: 2 }\n    in: { items: src.items }\n`);
      const probe = newProbe();
      await start(graph, probe).done;
      expect(probe.received.sink).toHaveLength(12);
      expect(Math.max(...probe.lead)).toBe(buffer);
    }
  });

  it('backpressure through a synchronous transform: the bound is the sum of both edges', async () => {
    const graph = await graphOf(`${src(20)}  twice:\n    type: double\n    in: { items: { from: src.items, buffer: 2 } }\n  sink:\n    type: slow-sink\n    with: { delayMs: 1 }\n    in: { items: { from: twice.items, buffer: 1 } }\n`);
    const probe = newProbe();
    const queueDepths: number[] = [];
    const handle = start(graph, probe);
    handle.nodeStates$.subscribe((s) => queueDepths.push(s.twice.queues.items.depth, s.sink.queues.items.depth));
    await handle.done;
    expect(probe.received.sink).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(Math.max(...probe.lead)).toBe(3);
    expect(Math.max(...queueDepths)).toBeLessThanOrEqual(2);
  });

  it('the feedback edge carries the latest policy back to the generator; metrics reach the bus', async () => {
    const graph = await graphOf(`${src(6)}  gen:\n    type: generator\n    in: { items: src.items, policy: train.policy }\n  train:\n    type: trainer\n    buffer: 1\n    in: { items: gen.items }\n`);
    const probe = newProbe();
    const handle = start(graph, probe);
    const metrics = lastValueFrom(handle.metrics$.pipe(toArray()));
    await handle.done;
    const got = probe.received.train as number[];
    expect(got.map((x) => Math.floor(x / 1000))).toEqual([0, 1, 2, 3, 4, 5]);
    // Weights are trainer steps: the generator saw later weights as training went on (never ahead of it).
    const seen = got.map((x) => x % 1000);
    expect(seen[0]).toBe(0);
    expect(seen.every((w, i) => w <= i)).toBe(true);
    expect(Math.max(...seen)).toBeGreaterThan(0);
    expect((await metrics).map((m) => [m.step, m.node, m.values.loss])).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, 'train', 1 / s]));
  });

  it('a multiple input receives one stream per edge', async () => {
    const graph = await graphOf(`${src(3, 'a')}  b:\n    type: count\n    version: 1\n    with: { n: 2, start: 100 }\n  m:\n    type: merge\n    in: { items: [a.items, b.items] }\n  sink:\n    type: slow-sink\n    with: { delayMs: 0 }\n    in: { items: m.items }\n`);
    const probe = newProbe();
    const handle = start(graph, probe);
    const states: NodeStates[] = [];
    handle.nodeStates$.subscribe((s) => states.push(s));
    await handle.done;
    expect((probe.received.sink as number[]).sort((x, y) => x - y)).toEqual([0, 1, 2, 100, 101]);
    expect(Object.keys(states[0].m.queues)).toEqual(['items[0]', 'items[1]']);
    const last = states[states.length - 1];
    expect([last.m.status, last.m.itemsIn, last.m.itemsOut]).toEqual(['done', 5, 5]);
  });

  it('writes metrics.jsonl and events.log', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'grpoflow-run-'));
    const graph = await graphOf(`${src(3)}  gen:\n    type: generator\n    in: { items: src.items }\n  train:\n    type: trainer\n    in: { items: gen.items }\n`);
    const bus = new MetricsBus();
    const writers = [writeMetricsJsonl(bus.metrics$, path.join(out, 'metrics.jsonl')), writeEventsLog(bus.events$, path.join(out, 'events.log'))];
    await runGraph(graph, { outDir: out, bus, services: { probe: newProbe() } }).done;
    await Promise.all(writers.map((w) => w.close()));
    const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { step: 1, node: 'train', loss: 1 },
      { step: 2, node: 'train', loss: 0.5 },
      { step: 3, node: 'train', loss: 1 / 3 },
    ]);
    const events = readFileSync(path.join(out, 'events.log'), 'utf8');
    expect(events.split('\n')[0]).toMatch(/INFO  \[graph\] run started: test \{"nodes":3\}$/);
    expect(events).toMatch(/INFO  \[graph\] run started: test/);
    expect(events).toMatch(/INFO  \[graph\] run completed/);
  });
});
