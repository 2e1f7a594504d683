// Group-relative advantages as TRL's GRPOTrainer computes them:
//   A = (r − mean of the prompt's G rewards) / (std + 1e-4)
// where std is, by `scaleRewards`: 'group' the std of the G rewards, 'batch' the std of every reward in the
// batch, 'none' no division. Like torch.std, std is the unbiased (n − 1) estimate; a group of one has std 0.
import type { ScoredBatch, TrainingBatch } from '../ports.js';

export type ScaleRewards = 'group' | 'batch' | 'none';

export const ADVANTAGE_STD_EPSILON = 1e-4;

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Unbiased standard deviation (torch.std's default); 0 for fewer than two values. */
export function unbiasedStd(values: number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1));
}

export interface AdvantageResult {
  advantages: number[][];
  /** Per group: the std used to tell "no signal" groups (the group std, whatever the scaling). */
  groupStd: number[];
  metrics: Record<string, number>;
}

/**
 * `totals[group][completion]` → advantages and TRL's reward metrics (`reward`, `reward_std`,
 * `frac_reward_zero_std`). `reward_std` is the mean of the std used for scaling (TRL logs the same);
 * `frac_reward_zero_std` is the fraction of groups whose rewards are all equal (TRL with 'batch' scaling
 * tests the single batch std instead, which says nothing per group; we always test per group).
 */
export function groupAdvantages(totals: number[][], scaleRewards: ScaleRewards = 'group'): AdvantageResult {
  if (totals.length === 0) throw new Error('groupAdvantages: the batch has no groups');
  const all = totals.flat();
  const batchStd = unbiasedStd(all);
  const groupStd = totals.map(unbiasedStd);
  const scaleStd = totals.map((_, g) => (scaleRewards === 'batch' ? batchStd : groupStd[g]));
  const advantages = totals.map((group, g) => {
    const m = mean(group);
    return group.map((r) => (scaleRewards === 'none' ? r - m : (r - m) / (scaleStd[g] + ADVANTAGE_STD_EPSILON)));
  });
  // torch.isclose(std, 0) with its default atol 1e-8.
  const zeroStd = groupStd.filter((s) => Math.abs(s) <= 1e-8).length;
  // TRL's `reward_std` averages the per-sample std vector: each group's std weighted by its size.
  const stdPerSample = totals.flatMap((group, g) => group.map(() => scaleStd[g]));
  return {
    advantages,
    groupStd,
    metrics: {
      reward: mean(all),
      reward_std: mean(stdPerSample),
      frac_reward_zero_std: zeroStd / totals.length,
    },
  };
}

/** Per reward function: `rewards/NAME/mean` and `rewards/NAME/std` of its raw (unweighted) values, as TRL logs them. */
export function rewardFunctionMetrics(batch: ScoredBatch): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const reward of batch.rewards) {
    const values = reward.values.flat();
    metrics[`rewards/${reward.name}/mean`] = mean(values);
    metrics[`rewards/${reward.name}/std`] = unbiasedStd(values);
  }
  return metrics;
}

/** Adds advantages to a scored batch, and the batch's reward metrics (computed here once, with the
 *  scaling that made the advantages; the trainer logs them with each of its steps on this batch). */
export function computeAdvantages(batch: ScoredBatch, scaleRewards: ScaleRewards = 'group'): { batch: TrainingBatch; metrics: Record<string, number> } {
  const { advantages, metrics: groupMetrics } = groupAdvantages(batch.totals, scaleRewards);
  const metrics = { ...groupMetrics, ...rewardFunctionMetrics(batch) };
  return { batch: { ...batch, advantages, rewardMetrics: metrics }, metrics };
}

/** The reward metrics a training batch carries; for a batch built without computeAdvantages, those of
 *  'group' scaling (the advantages' scaling is unknown there). */
export function batchRewardMetrics(batch: TrainingBatch): Record<string, number> {
  return batch.rewardMetrics ?? { ...groupAdvantages(batch.totals, 'group').metrics, ...rewardFunctionMetrics(batch) };
}
