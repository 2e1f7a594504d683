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

/** Whether a group's rewards are all equal (torch.isclose(std, 0) with its default atol 1e-8): no signal. */
export function isZeroStd(std: number): boolean {
  return Math.abs(std) <= 1e-8;
}

/**
 * TRL's reward metrics of `totals[group][completion]` (TRL 1.10 _generate_and_score_completions):
 * `reward` the mean, `reward_std` the unbiased std over the whole batch (nanstd(rewards)),
 * `frac_reward_zero_std` the fraction of groups whose rewards are all equal (TRL with 'batch' scaling tests
 * the single batch std instead, which says nothing per group; we always test per group); and ours,
 * `reward_group_std`, the mean of the groups' stds (what `reward_std` was before TRL changed it).
 */
export function rewardMetrics(totals: number[][]): Record<string, number> {
  const groupStd = totals.map(unbiasedStd);
  // Each group's std weighted by its size (equal sizes: the plain mean).
  const stdPerSample = totals.flatMap((group, g) => group.map(() => groupStd[g]));
  return {
    reward: mean(totals.flat()),
    reward_std: unbiasedStd(totals.flat()),
    reward_group_std: mean(stdPerSample),
    frac_reward_zero_std: groupStd.filter(isZeroStd).length / totals.length,
  };
}

/** `totals[group][completion]` → advantages, each group's std, and the reward metrics (rewardMetrics). */
export function groupAdvantages(totals: number[][], scaleRewards: ScaleRewards = 'group'): AdvantageResult {
  if (totals.length === 0) throw new Error('groupAdvantages: the batch has no groups');
  const batchStd = unbiasedStd(totals.flat());
  const groupStd = totals.map(unbiasedStd);
  const scaleStd = totals.map((_, g) => (scaleRewards === 'batch' ? batchStd : groupStd[g]));
  const advantages = totals.map((group, g) => {
    const m = mean(group);
    return group.map((r) => (scaleRewards === 'none' ? r - m : (r - m) / (scaleStd[g] + ADVANTAGE_STD_EPSILON)));
  });
  return { advantages, groupStd, metrics: rewardMetrics(totals) };
}

/** Per reward function: `rewards/NAME/mean` and `rewards/NAME/std` of its raw (unweighted) values, as TRL logs them. */
export function rewardFunctionMetrics(batch: Pick<ScoredBatch, 'rewards'>): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const reward of batch.rewards) {
    const values = reward.values.flat();
    metrics[`rewards/${reward.name}/mean`] = mean(values);
    metrics[`rewards/${reward.name}/std`] = unbiasedStd(values);
  }
  return metrics;
}

/** Adds advantages to a scored batch, and the batch's reward metrics (computed here once; the trainer
 *  logs them with each of its steps on this batch). */
export function computeAdvantages(batch: ScoredBatch, scaleRewards: ScaleRewards = 'group'): { batch: TrainingBatch; metrics: Record<string, number> } {
  const { advantages, metrics: groupMetrics } = groupAdvantages(batch.totals, scaleRewards);
  const metrics = { ...groupMetrics, ...rewardFunctionMetrics(batch) };
  return { batch: { ...batch, advantages, rewardMetrics: metrics }, metrics };
}

/** The reward metrics a training batch carries, or computed from its rewards for a batch built without computeAdvantages. */
export function batchRewardMetrics(batch: TrainingBatch): Record<string, number> {
  return batch.rewardMetrics ?? { ...rewardMetrics(batch.totals), ...rewardFunctionMetrics(batch) };
}
