// The GRPO library: rewards, advantages, loss, optimiser, schedules, batch plan, checkpoints, train step.
export * from './rewards/index.js';
export { groupAdvantages, computeAdvantages, rewardFunctionMetrics, unbiasedStd, ADVANTAGE_STD_EPSILON, type ScaleRewards, type AdvantageResult } from './advantages.js';
export { grpoLoss, resolveLossConfig, LOSS_TYPES, type LossType, type GrpoLossConfig, type GrpoLossInputs, type GrpoLossOutput } from './loss.js';
export { detach } from './detach.js';
export { AdamW, clipGradNorm, type AdamWConfig, type AdamWState } from './optimizer.js';
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
export { flattenBatch, packRows, type TrainingRow, type PackedRows } from './pack.js';
export {
  grpoTrainStep,
  computeRowLogprobs,
  GrpoTrainer,
  type PolicyModel,
  type TrainStepConfig,
  type TrainStepOptions,
  type TrainStepResult,
  type GrpoTrainerConfig,
  type GrpoTrainerState,
  type RowLogprobs,
} from './train-step.js';
