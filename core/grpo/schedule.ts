// Learning-rate schedules as Hugging Face's get_{constant,linear,cosine}_schedule_with_warmup:
// a multiplier of the base LR as a function of the number of optimiser steps already taken (0 for the
// first update, so with warmup the first update uses LR 0, as in HF).
export type ScheduleType = 'constant' | 'linear' | 'cosine';
export const SCHEDULE_TYPES: readonly ScheduleType[] = ['constant', 'linear', 'cosine'];

export interface ScheduleConfig {
  type: ScheduleType;
  learningRate: number;
  totalSteps: number;
  /** Fraction of totalSteps spent warming up; warmup steps = ceil(ratio × total), as HF's get_warmup_steps. */
  warmupRatio?: number;
  /** Overrides warmupRatio when > 0 (HF's warmup_steps). */
  warmupSteps?: number;
}

export function warmupSteps(config: Pick<ScheduleConfig, 'totalSteps' | 'warmupRatio' | 'warmupSteps'>): number {
  if (config.warmupSteps !== undefined && config.warmupSteps > 0) return config.warmupSteps;
  return Math.ceil(config.totalSteps * (config.warmupRatio ?? 0));
}

/** Returns `lr(step)`: the learning rate for the update after `step` completed updates. */
export function learningRateSchedule(config: ScheduleConfig): (step: number) => number {
  const { type, learningRate, totalSteps } = config;
  if (!SCHEDULE_TYPES.includes(type)) throw new Error(`learning-rate schedule "${type}" is not one of ${SCHEDULE_TYPES.join(', ')}`);
  if (!(learningRate >= 0)) throw new Error(`learning rate must be ≥ 0 (got ${learningRate})`);
  if (!(totalSteps >= 1)) throw new Error(`schedule totalSteps must be ≥ 1 (got ${totalSteps})`);
  const ratio = config.warmupRatio ?? 0;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmupRatio must lie in [0, 1] (got ${ratio})`);
  const warmup = warmupSteps(config);
  return (step: number) => {
    if (step < warmup) return (learningRate * step) / Math.max(1, warmup);
    // 'constant' with warmup is HF's constant_with_warmup (HF's plain 'constant' ignores warmup).
    if (type === 'constant') return learningRate;
    const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
    if (type === 'linear') return learningRate * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmup));
    return learningRate * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress))); // num_cycles = 0.5
  };
}
