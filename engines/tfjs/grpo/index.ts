// The GRPO library's tensor part on tfjs: loss, optimiser, packing, train step.
export { grpoLoss, type GrpoLossInputs, type GrpoLossOutput } from './loss.js';
export { detach } from './detach.js';
export { AdamW, clipGradNorm, type AdamWConfig, type AdamWState } from './optimizer.js';
export { flattenBatch, packRows, type TrainingRow, type PackedRows } from './pack.js';
export {
  grpoTrainStep,
  computeRowLogprobs,
  GrpoTrainer,
  type PolicyModel,
  type TrainStepOptions,
  type TrainStepResult,
  type GrpoTrainerConfig,
  type GrpoTrainerState,
  type RowLogprobs,
} from './train-step.js';
