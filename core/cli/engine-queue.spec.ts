// EngineQueue merges requests that wait for a busy engine into one call, with each prompt's seed, up to
// maxBatch completions, and fails waiting requests (never runs them on a closed engine) when closed.
import { describe, expect, it } from 'vitest';
import type { RolloutEngine, SampledRows, SamplingOptions } from '../engine/interfaces.js';
import { rowsOf } from '../engine/rows.js';
import { EngineClosedError, EngineQueue } from './engine-queue.js';

/** A fake engine: completion k of prompt p is [p[0], seed of p, k]; it records each call. */
function fakeEngine() {
  const calls: { prompts: number[][]; options: SamplingOptions }[] = [];
  let closed = false;
  const engine: RolloutEngine = {
    name: 'fake',
    async setWeights() {},
    async sample(prompts, n, options) {
      if (closed) throw new Error('sampled after close');
      calls.push({ prompts: prompts.map((p) => Array.from(p)), options });
      await new Promise((r) => setTimeout(r, 20));
      const completions = prompts.flatMap((p, i) => Array.from({ length: n }, (_, k) => [p[0], options.promptSeeds![i], k]));
      const rows = rowsOf(prompts.flatMap((p) => Array.from({ length: n }, () => Array.from(p))), completions);
      return { ...rows, logprobs: new Float32Array(rows.completionIds.length).fill(-1), finishReasons: completions.map(() => 'length'), texts: completions.map(String), policyVersion: 0, seconds: 0 } as SampledRows;
    },
    async score(rows) {
      return new Float32Array(rows.completionIds.length).map((_, i) => -i);
    },
    async close() {
      closed = true;
    },
  };
  return { engine, calls };
}

const SETTINGS = { maxNewTokens: 3, temperature: 1 };

describe('EngineQueue', () => {
  it('merges waiting requests with the same settings, each with its own seed, up to maxBatch completions', async () => {
    const { engine, calls } = fakeEngine();
    const queue = new EngineQueue(engine, 4);
    const answers = await Promise.all([
      queue.sample([1], 2, SETTINGS, 11),
      queue.sample([2], 2, SETTINGS, 22),
      queue.sample([3], 2, SETTINGS, 33),
      queue.sample([4], 2, { ...SETTINGS, temperature: 0.5 }, 44),
    ]);
    expect(calls.map((c) => [c.prompts, c.options.promptSeeds])).toEqual([
      [[[1], [2]], [11, 22]],
      [[[3]], [33]],
      [[[4]], [44]],
    ]);
    expect(answers.map((a) => a.ids)).toEqual([
      [[1, 11, 0], [1, 11, 1]],
      [[2, 22, 0], [2, 22, 1]],
      [[3, 33, 0], [3, 33, 1]],
      [[4, 44, 0], [4, 44, 1]],
    ]);
  });

  it('fails the requests still waiting when closed, and never samples on the closed engine', async () => {
    const { engine } = fakeEngine();
    const queue = new EngineQueue(engine, 1);
    const running = queue.sample([1], 1, SETTINGS, 1);
    const waiting = queue.sample([2], 1, SETTINGS, 2).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 5));
    await queue.close();
    await expect(running).resolves.toMatchObject({ ids: [[1, 1, 0]] });
    expect(await waiting).toBeInstanceOf(EngineClosedError);
    await expect(queue.sample([3], 1, SETTINGS, 3)).rejects.toBeInstanceOf(EngineClosedError);
  });

  it('scores merged rows and hands each request its own values', async () => {
    const { engine } = fakeEngine();
    const queue = new EngineQueue(engine, 8);
    const [a, b] = await Promise.all([queue.score([1], [5, 6], 1), queue.score([2], [7, 8, 9], 1)]);
    expect(Array.from(a)).toEqual([-0, -1]);
    expect(Array.from(b)).toEqual([-2, -3, -4]);
  });
});
