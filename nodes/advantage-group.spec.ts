import { lastValueFrom, of, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ScoredBatch } from '../core/ports.js';
import { rolloutBatch } from '../test/nodes/batches.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { advantageGroup } from './advantage-group.js';

/** Two groups of three; reward `a` is the totals (weight 1), reward `b` is all zero (weight 0). */
function scored(totals: number[][]): ScoredBatch {
  const base = rolloutBatch(totals.map((g) => g.map(String)), ['1', '1'], 7);
  return {
    ...base,
    rewards: [
      { name: 'a', weight: 1, values: totals },
      { name: 'b', weight: 0, values: totals.map((g) => g.map(() => 0)) },
    ],
    totals,
  };
}

async function run(totals: number[][], config: Record<string, unknown> = {}) {
  const recorded = recordingContext(advantageGroup.config.parse(config));
  const out = await advantageGroup.run(recorded.ctx, { scored: of(scored(totals)) });
  const [batch] = await lastValueFrom(out.batches!.pipe(toArray()));
  return { batch, metrics: recorded.metrics };
}

describe('advantage.group', () => {
  it('normalises within each group by its std (+1e-4) and publishes TRL-named reward metrics', async () => {
    const { batch, metrics } = await run([[1, 2, 3], [5, 5, 5]]);
    // group 0: mean 2, unbiased std 1 → (r − 2) / 1.0001; group 1: all equal → 0.
    const d = 1 / 1.0001;
    batch.advantages[0].forEach((a, i) => expect(a).toBeCloseTo([-d, 0, d][i], 10));
    expect(batch.advantages[1]).toEqual([0, 0, 0]);
    expect(batch.totals).toEqual([[1, 2, 3], [5, 5, 5]]);
    expect(metrics).toHaveLength(1);
    expect(metrics[0].step).toBe(7);
    const v = metrics[0].values;
    expect(v.reward).toBeCloseTo(21 / 6, 12);
    expect(v.reward_group_std).toBeCloseTo(0.5, 12); // mean of per-sample group std: (1·3 + 0·3) / 6
    // reward_std as TRL logs it: the unbiased std of all six rewards (mean 3.5; squares 6.25 2.25 0.25 2.25 ×3 → 15.5/5).
    expect(v.reward_std).toBeCloseTo(Math.sqrt(15.5 / 5), 12);
    expect(v.frac_reward_zero_std).toBe(0.5);
    expect(v['rewards/a/mean']).toBeCloseTo(21 / 6, 12);
    expect(v['rewards/b/mean']).toBe(0);
    expect(v['rewards/b/std']).toBe(0);
    const all = [1, 2, 3, 5, 5, 5];
    const m = 21 / 6;
    expect(v['rewards/a/std']).toBeCloseTo(Math.sqrt(all.reduce((s, x) => s + (x - m) ** 2, 0) / 5), 12);
  });

  it("scales by the batch's std, or not at all", async () => {
    const totals = [[0, 2], [4, 10]];
    const all = totals.flat();
    const m = all.reduce((a, b) => a + b) / 4;
    const batchStd = Math.sqrt(all.reduce((s, x) => s + (x - m) ** 2, 0) / 3);
    const byBatch = (await run(totals, { scale_rewards: 'batch' })).batch.advantages;
    expect(byBatch[0][0]).toBeCloseTo(-1 / (batchStd + 1e-4), 12);
    expect(byBatch[1][1]).toBeCloseTo(3 / (batchStd + 1e-4), 12);
    expect((await run(totals, { scale_rewards: 'none' })).batch.advantages).toEqual([[-1, 1], [-3, 3]]);
    expect(() => advantageGroup.config.parse({ scale_rewards: 'global' })).toThrow();
  });
});
