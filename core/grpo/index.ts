// The GRPO library's plain part: rewards, advantages, the loss spec, schedules, batch plan, checkpoints.
// Its tensor part (loss, optimiser, packing, train step) is engines/tfjs/grpo/index.ts.
export * from './rewards/index.js';
export { groupAdvantages, computeAdvantages, rewardFunctionMetrics, unbiasedStd, ADVANTAGE_STD_EPSILON, type ScaleRewards, type AdvantageResult } from './advantages.js';
export { resolveLossConfig, LOSS_TYPES, type LossType, type GrpoLossConfig, type TrainStepConfig } from './loss-spec.js';
export { learningRateSchedule, warmupSteps, SCHEDULE_TYPES, type ScheduleType, type ScheduleConfig } from './schedule.js';
export { planBatches, BatchPlanError, type BatchPlan, type BatchPlanInput } from './batch-plan.js';
export {
  writeFileAtomic,
  saveCheckpoint,
  loadCheckpoint,
  latestCheckpoint,
  listCheckpointSteps,
  checkpointDir,
  type CheckpointData,
  type LoadedCheckpoint,
  type SaveCheckpointOptions,
} from './checkpoint.js';
