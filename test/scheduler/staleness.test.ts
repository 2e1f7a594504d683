// The schedule between rollout.generate and a trainer, run through the engine on llama-tiny: the
// staleness bound holds whichever side is slower, overlap really runs ahead, the strict schedule is
// on-policy, and a failure or Ctrl-C on either side ends the run (no deadlock) with the worker shut down.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../core/graph/plugin-loader.js';
import { loadGraphText } from '../../core/graph/load.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import type { NodeRegistry } from '../../core/registry.js';
import { NodeRunError, runGraph, type RunResult } from '../../core/runtime/run-graph.js';
import { EngineWorker } from '../../core/scheduler/engine-worker.js';
import { schedulerTestPlugin, type SchedulerProbe } from './fake-nodes.js';

let registry: NodeRegistry;

beforeAll(async () => {
  await initBackend('wasm');
  registry = (await builtinRegistry()).clone();
  registry.register(schedulerTestPlugin, 'test/scheduler/fake-nodes.ts');
});

interface Scenario {
  prompts?: number;
  brokenAt?: number;
  rollout: Record<string, unknown>;
  trainer?: Record<string, unknown>;
  /** Batches the rollouts → trainer edge holds (default 1). */
  buffer?: number;
}

function graphText(s: Scenario): string {
  const yaml = (o: Record<string, unknown>) => JSON.stringify(o);
  return `
apiVersion: grpoflow/v1
kind: Graph
metadata: { name: staleness }
seed: 5
nodes:
  base:
    type: model.load
    with: { path: ../fixtures/llama-tiny }
  template:
    type: chat.template
    in: { model: base.model, tokenizer: base.tokenizer }
    with: { variables: { date_string: 26 Jul 2024 } }
  lora:
    type: lora.apply
    in: { model: base.model }
    with: { r: 2, alpha: 4, target_modules: [q_proj, v_proj] }
  prompts:
    type: sched/prompts
    with: ${yaml({ n: s.prompts ?? 6, ...(s.brokenAt !== undefined ? { broken_at: s.brokenAt } : {}) })}
  rollouts:
    type: rollout.generate
    buffer: 1
    in: { model: lora.model, tokenizer: base.tokenizer, template: template.template, prompts: prompts.prompts, policy: trainer.policy }
    with: ${yaml({ num_generations: 2, max_new_tokens: 2, ...s.rollout })}
  trainer:
    type: sched/trainer
    buffer: ${s.buffer ?? 1}
    in: { model: lora.model, rollouts: rollouts.rollouts }
    with: ${yaml(s.trainer ?? {})}
`;
}

async function run(s: Scenario, options: { abortAfterBatches?: number } = {}) {
  const { graph, diagnostics } = await loadGraphText(graphText(s), path.resolve('test/scheduler/staleness.yaml'), { registry, env: {} });
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const probe: SchedulerProbe = { trained: [] };
  const controller = new AbortController();
  const handle = runGraph(graph!, { outDir: '/tmp', services: { seed: graph!.seed, probe, backend: { name: 'wasm', notes: [] } }, signal: controller.signal });
  const metrics: Record<string, number>[] = [];
  handle.metrics$.subscribe((m) => {
    if (m.node === 'rollouts') metrics.push(m.values);
    if (options.abortAfterBatches !== undefined && metrics.length >= options.abortAfterBatches) controller.abort();
  });
  let result: RunResult | undefined;
  let error: unknown;
  try {
    result = await handle.done;
  } catch (e) {
    error = e;
  }
  return { probe, result, error, metrics };
}

const staleness = (probe: SchedulerProbe) => probe.trained.map((b) => b.step - b.policyVersion);

describe('rollout schedule', () => {
  it('overlap with a slow trainer: the generator runs ahead by exactly max_staleness steps, never more, however large the buffers', async () => {
    const { probe, result, metrics } = await run({ rollout: { overlap: true, max_staleness: 1 }, trainer: { step_ms: 250, verify_behaviour: true }, buffer: 3 });
    expect(result?.status).toBe('completed');
    expect(probe.trained.map((b) => b.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Math.max(...staleness(probe))).toBe(1); // ran ahead (overlap) …
    expect(staleness(probe).every((s) => s >= 0 && s <= 1)).toBe(true); // … within the bound
    // Each batch was sampled with exactly the weights of the version it is stamped with (the worker got
    // the shared model's adapter as the trainer announced it).
    expect(probe.behaviourError).toBeLessThan(1e-4);
    expect(metrics.every((m) => m['scheduler/policy_lag'] <= 1)).toBe(true);
    expect(metrics.at(-1)!['scheduler/generator_busy']).toBeGreaterThan(0);
    expect(metrics.at(-1)!.busy).toBe(metrics.at(-1)!['scheduler/generator_busy']);
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('overlap with a slow generator and a fast trainer keeps the bound, with max_staleness 2 too', async () => {
    const one = await run({ rollout: { overlap: true, max_staleness: 1, max_new_tokens: 24 }, trainer: { step_ms: 0 } });
    expect(one.result?.status).toBe('completed');
    expect(staleness(one.probe).every((s) => s >= 0 && s <= 1)).toBe(true);
    // Two steps ahead needs room for two batches between them: one on the edge, one being generated.
    const two = await run({ rollout: { overlap: true, max_staleness: 2 }, trainer: { step_ms: 200 }, buffer: 2 });
    expect(Math.max(...staleness(two.probe))).toBe(2);
    expect(staleness(two.probe).every((s) => s <= 2)).toBe(true);
  });

  it('counts optimiser steps when the trainer takes several per batch (num_iterations)', async () => {
    const { probe } = await run({ prompts: 4, rollout: { overlap: true, max_staleness: 1 }, trainer: { step_ms: 100, steps_per_batch: 3 } });
    expect(probe.trained.map((b) => b.step)).toEqual([0, 3, 6, 9]);
    expect(Math.max(...staleness(probe))).toBe(1);
  });

  it('overlap: false is strictly on-policy: every batch is sampled by the policy that trains on it', async () => {
    for (const engine of ['main', 'worker']) {
      const { probe, result } = await run({ prompts: 4, rollout: { overlap: false, engine }, trainer: { step_ms: 50, verify_behaviour: true } });
      expect(result?.status).toBe('completed');
      expect(probe.trained.map((b) => b.policyVersion)).toEqual([0, 1, 2, 3]);
      expect(staleness(probe)).toEqual([0, 0, 0, 0]);
      expect(probe.behaviourError).toBeLessThan(1e-4);
    }
  });

  it('filter_groups (dynamic sampling): the extra draws do not stall a strict on-policy generator, and overlap keeps its bound', async () => {
    // Prompts p1, p3, p5 have equal rewards (dropped): steps take p0 | p1 p2 | p3 p4, and p5 waits for a sixth.
    const strict = await run({ rollout: { overlap: false }, trainer: { step_ms: 20, filter_groups: true, verify_behaviour: true } });
    expect(strict.result?.status).toBe('completed');
    expect(strict.probe.trained.map((b) => [b.index, b.step])).toEqual([[0, 0], [1, 1], [2, 1], [3, 2], [4, 2], [5, 3]]);
    expect(staleness(strict.probe)).toEqual([0, 0, 0, 0, 0, 0]); // every draw sampled by the policy that trains on it
    expect(strict.probe.behaviourError).toBeLessThan(1e-4);
    const overlapped = await run({ rollout: { overlap: true, max_staleness: 1 }, trainer: { step_ms: 150, filter_groups: true }, buffer: 2 });
    expect(overlapped.result?.status).toBe('completed');
    expect(overlapped.probe.trained.map((b) => b.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(staleness(overlapped.probe).every((s) => s >= 0 && s <= 1)).toBe(true);
    expect(Math.max(...staleness(overlapped.probe))).toBe(1); // it did run ahead
    expect(overlapped.metrics.every((m) => m['scheduler/policy_lag'] <= 1)).toBe(true);
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('stops generating when the trainer finishes early', async () => {
    const { probe, result } = await run({ prompts: 8, rollout: { overlap: true }, trainer: { max_batches: 2 } });
    expect(result?.status).toBe('completed');
    expect(probe.trained.length).toBeLessThanOrEqual(3); // two trained, at most one in flight when it ended
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('a failing trainer ends the run with its error while the generator waits or works; the worker is shut down', async () => {
    for (const rollout of [{ overlap: true }, { overlap: false }]) {
      const { error } = await run({ rollout, trainer: { fail_at_batch: 2, step_ms: 20 } });
      expect(error).toBeInstanceOf(NodeRunError);
      expect((error as NodeRunError).nodeId).toBe('trainer');
      expect((error as Error).message).toMatch(/trainer exploded on batch 2/);
      expect(EngineWorker.liveCount).toBe(0);
    }
  });

  it('a failing generator ends the run with its error while the trainer waits; the worker is shut down', async () => {
    const { error } = await run({ brokenAt: 2, rollout: { overlap: true }, trainer: { step_ms: 20 } });
    expect(error).toBeInstanceOf(NodeRunError);
    expect((error as NodeRunError).nodeId).toBe('rollouts');
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('Ctrl-C (the run signal) mid-generation aborts the run and shuts the worker down', async () => {
    const { result } = await run({ prompts: 50, rollout: { overlap: true, max_new_tokens: 64 }, trainer: { step_ms: 10 } }, { abortAfterBatches: 2 });
    expect(result?.status).toBe('aborted');
    expect(EngineWorker.liveCount).toBe(0);
  });
});
