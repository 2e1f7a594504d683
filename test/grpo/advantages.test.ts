import { describe, expect, it } from 'vitest';
import { computeAdvantages, groupAdvantages, unbiasedStd } from '../../core/grpo/advantages.js';
import type { ScoredBatch } from '../../core/ports.js';

const totals = [
  [1, 2, 3, 6],
  [2, 2, 2, 2],
];

describe('groupAdvantages', () => {
  it("'group': (r − group mean) / (unbiased group std + 1e-4), as torch.std", () => {
    // Group 0: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, unbiased variance 14/3.
    const std0 = Math.sqrt(14 / 3);
    expect(unbiasedStd(totals[0])).toBeCloseTo(std0, 12);
    const { advantages, metrics } = groupAdvantages(totals, 'group');
    [-2, -1, 0, 3].forEach((d, i) => expect(advantages[0][i]).toBeCloseTo(d / (std0 + 1e-4), 12));
    expect(advantages[1]).toEqual([0, 0, 0, 0]); // equal rewards: no signal
    expect(metrics.frac_reward_zero_std).toBe(0.5);
    expect(metrics.reward).toBeCloseTo((12 + 8) / 8, 12);
    // TRL 1.10: reward_std is the unbiased std of all 8 rewards (mean 2.5; squared deviations 2.25 0.25 0.25 12.25
    // and 4 × 0.25: 16 / 7); the mean of the group stds (std0 ×4, 0 ×4) is reward_group_std.
    expect(metrics.reward_std).toBeCloseTo(Math.sqrt(16 / 7), 12);
    expect(metrics.reward_group_std).toBeCloseTo(std0 / 2, 12);
  });

  it("'batch': the std of all rewards of the batch divides every group", () => {
    const all = totals.flat(); // mean 2.5
    const batchStd = Math.sqrt(all.reduce((s, r) => s + (r - 2.5) ** 2, 0) / 7);
    const { advantages, metrics } = groupAdvantages(totals, 'batch');
    expect(advantages[0][3]).toBeCloseTo(3 / (batchStd + 1e-4), 12);
    expect(advantages[1][0]).toBe(0);
    expect(batchStd).toBeCloseTo(Math.sqrt(16 / 7), 12);
    expect(metrics.reward_std).toBeCloseTo(batchStd, 12); // whatever the scaling
    expect(metrics.reward_group_std).toBeCloseTo(Math.sqrt(14 / 3) / 2, 12);
    expect(metrics.frac_reward_zero_std).toBe(0.5); // still per group
  });

  it("'none': only the group mean is subtracted", () => {
    expect(groupAdvantages(totals, 'none').advantages).toEqual([
      [-2, -1, 0, 3],
      [0, 0, 0, 0],
    ]);
  });

  it('a group of one has std 0 (torch would give NaN; TRL uses 0)', () => {
    const { advantages, metrics } = groupAdvantages([[5], [7]], 'group');
    expect(advantages).toEqual([[0], [0]]);
    expect(metrics.frac_reward_zero_std).toBe(1);
    expect(() => groupAdvantages([], 'group')).toThrow(/no groups/);
  });
});

describe('computeAdvantages', () => {
  it('adds advantages and per-function raw reward metrics', () => {
    const batch = {
      index: 0,
      policyVersion: 0,
      groups: [],
      rewards: [
        { name: 'format', weight: 2, values: [[3, 0], [3, 3]] },
        { name: 'correctness', weight: 1, values: [[3, -1.5], [1, 0]] },
      ],
      totals: [[9, -1.5], [7, 6]],
    } as unknown as ScoredBatch;
    const { batch: trained, metrics } = computeAdvantages(batch, 'group');
    expect(trained.advantages[0][0]).toBeGreaterThan(0);
    expect(trained.advantages[0][0]).toBeCloseTo(-trained.advantages[0][1], 12);
    expect(metrics['rewards/format/mean']).toBeCloseTo(9 / 4, 12);
    expect(metrics['rewards/format/std']).toBeCloseTo(Math.sqrt((3 * 0.75 ** 2 + 2.25 ** 2) / 3), 12);
    expect(metrics['rewards/correctness/mean']).toBeCloseTo(2.5 / 4, 12);
  });
});
