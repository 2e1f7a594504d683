// The worker host runs any registered rollout engine in a worker thread: a plugin's toy engine (no
// tensor library) gives the same rows in a worker as on the main thread, follows setWeights, scores,
// sends its typed arrays back as typed arrays, reports errors from the worker with their message, and is
// cancelled within a step by an aborted signal even while its compute never yields.
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { NodeRegistry } from '../../core/registry.js';
import { EngineWorker } from '../../core/scheduler/engine-worker.js';
import { RolloutScheduler } from '../../core/scheduler/rollout-scheduler.js';
import { toyEnginePlugin } from './toy-engine.js';

const tokenizer = await Tokenizer.fromDir('test/fixtures/llama-tiny');
const registry = new NodeRegistry();
registry.register(toyEnginePlugin, 'test/scheduler/toy-engine.ts');
const definition = registry.engine('toy')!.def;
const prompts = [[1, 2, 3], [10, 20]];
const weights = { version: 3, weights: { 'toy.a': { shape: [2], data: new Float32Array([100, 200]) } } };

describe('the worker host with a plugin-registered engine', () => {
  it('samples and scores in a worker exactly as the engine does on the main thread, weights included', async () => {
    const here = await definition.create({ model: { base: 5 }, tokenizer, thread: 'main' });
    const worker = await EngineWorker.start(definition, { model: { base: 5 }, tokenizer, thread: 'worker' });
    try {
      expect(worker.name).toBe('toy');
      const options = { maxNewTokens: 4 };
      expect(await worker.sample(prompts, 2, options)).toEqual(await here.sample(prompts, 2, options));
      await Promise.all([worker.setWeights(weights), here.setWeights(weights)]);
      expect(weights.weights['toy.a'].data.byteLength).toBe(8); // the caller's copy is still attached
      const remote = await worker.sample(prompts, 2, options);
      expect(remote.policyVersion).toBe(3);
      expect(remote.completionIds).toBeInstanceOf(Int32Array);
      expect(remote.logprobs).toBeInstanceOf(Float32Array);
      expect(remote).toEqual(await here.sample(prompts, 2, options));
      expect(Array.from(remote.completionIds.slice(0, 4))).toEqual([306, 307, 308, 306]);
      for (const adapters of ['on', 'off'] as const) {
        expect(await worker.score(remote, { adapters, temperature: 2 })).toEqual(await here.score(remote, { adapters, temperature: 2 }));
      }
    } finally {
      await worker.close();
    }
    expect(EngineWorker.liveCount).toBe(0);
  });

  it("surfaces the engine's errors with their message: at start (prepare, create in the worker) and per call", async () => {
    await expect(EngineWorker.start(definition, { model: { base: 0, fail: 'prepare' }, tokenizer, thread: 'worker' })).rejects.toThrow('toy engine: cannot prepare');
    await expect(EngineWorker.start(definition, { model: { base: 0, fail: 'create' }, tokenizer, thread: 'worker' })).rejects.toThrow(
      'rollout engine toy (worker thread): toy engine: cannot start (in the main thread: false)',
    );
    const worker = await EngineWorker.start(definition, { model: { base: 0 }, tokenizer, thread: 'worker' });
    try {
      await expect(worker.setWeights({ version: 1, weights: { nope: { shape: [1], data: new Float32Array(1) } } })).rejects.toThrow(
        'rollout engine toy (worker thread): toy engine: no weight named nope',
      );
      expect((await worker.sample(prompts, 1, { maxNewTokens: 1 })).policyVersion).toBe(0); // still serving
    } finally {
      await worker.close();
    }
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('an aborted signal cancels a sample whose compute never yields, and the worker serves on', async () => {
    const worker = await EngineWorker.start(definition, { model: { base: 0 }, tokenizer, thread: 'worker' });
    try {
      const controller = new AbortController();
      const started = performance.now();
      const busy = worker.sample([[1]], 1, { maxNewTokens: 60_000, temperature: -1 }, controller.signal).catch((e: Error) => e);
      setTimeout(() => controller.abort(new Error('Ctrl-C')), 100);
      expect(((await busy) as Error).message).toMatch(/rollout engine toy \(worker thread\): sample request \d+ was cancelled/);
      expect(performance.now() - started).toBeLessThan(30_000); // 60 s of spinning if the cancel were missed
      expect(completionCount(await worker.sample(prompts, 1, { maxNewTokens: 2 }))).toBe(4);
    } finally {
      await worker.close();
    }
  });

  it('the scheduler runs it in a worker thread when asked, on the main thread otherwise', async () => {
    for (const thread of ['worker', 'main'] as const) {
      const scheduler = await RolloutScheduler.start({ engine: definition, model: { base: 1 }, tokenizer, options: { overlap: false, maxStaleness: 0, thread } });
      try {
        expect(scheduler.engineKind).toBe(thread);
        const rows = await scheduler.sample(0, prompts, 1, { maxNewTokens: 2 });
        expect(Array.from(rows!.completionIds)).toEqual([2, 3, 11, 21]);
        expect(EngineWorker.liveCount).toBe(thread === 'worker' ? 1 : 0);
      } finally {
        await scheduler.close();
      }
    }
    expect(EngineWorker.liveCount).toBe(0);
  });

  it('an engine without a worker part is refused a worker thread with a clear message', async () => {
    const mainOnly = { ...definition, name: 'main-only', threads: ['main' as const], worker: undefined };
    await expect(EngineWorker.start(mainOnly, { model: {}, tokenizer, thread: 'worker' })).rejects.toThrow(/rollout engine main-only cannot run in a worker thread/);
  });
});

function completionCount(rows: { completionIds: Int32Array }): number {
  return rows.completionIds.length;
}

describe('registering a worker-capable engine', () => {
  it('an engine listing the worker thread without a worker part is refused at registration', () => {
    const { worker: _, ...noWorker } = toyEnginePlugin.rolloutEngines![0];
    expect(() => new NodeRegistry().register({ ...toyEnginePlugin, name: 'broken', rolloutEngines: [{ ...noWorker, name: 'broken' }] }, 'broken.ts')).toThrow(
      /rollout engine `broken` of plugin `broken` lists the worker thread but has no `worker: \{ module, exportName, prepare, create \}`/,
    );
  });
});
