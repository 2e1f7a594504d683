// The loss spec: what the policy trainer's step is asked to optimise (TRL's GRPO loss settings and the
// step's batching), as plain data. The tensor code that computes it is loss.ts / train-step.ts.

export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';
export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];

export interface GrpoLossConfig {
  /** Lower clip range ε (TRL `epsilon`). */
  epsilon?: number;
  /** Upper clip range (TRL `epsilon_high`); defaults to `epsilon`. */
  epsilonHigh?: number;
  /** KL coefficient; 0 (TRL's default) skips the reference policy entirely. */
  beta?: number;
  lossType?: LossType;
  /** dr_grpo's constant normaliser: B × maxCompletionLength. */
  maxCompletionLength?: number;
  /** dapo's normaliser: active completion tokens in the whole accumulated batch (defaults to this micro-batch's). */
  numItemsInBatch?: number;
  /** grpo/bnpo/dr_grpo divide by this so that summed micro-batch gradients average (HF Trainer's convention); dapo's normaliser already covers the whole batch. */
  gradientAccumulationSteps?: number;
  /** Truncation of the importance-sampling weight exp(old − behaviour) (TRL `vllm_importance_sampling_cap`). */
  importanceSamplingCap?: number;
}

export function resolveLossConfig(config: GrpoLossConfig) {
  const epsilon = config.epsilon ?? 0.2;
  const resolved = {
    epsilon,
    epsilonHigh: config.epsilonHigh ?? epsilon,
    beta: config.beta ?? 0,
    lossType: config.lossType ?? 'grpo',
    maxCompletionLength: config.maxCompletionLength,
    numItemsInBatch: config.numItemsInBatch,
    gradientAccumulationSteps: config.gradientAccumulationSteps ?? 1,
    importanceSamplingCap: config.importanceSamplingCap ?? 2.0,
  };
  if (!LOSS_TYPES.includes(resolved.lossType)) throw new Error(`grpoLoss: lossType "${resolved.lossType}" is not one of ${LOSS_TYPES.join(', ')}`);
  if (!(resolved.epsilon >= 0) || !(resolved.epsilonHigh >= 0)) throw new Error(`grpoLoss: epsilon and epsilonHigh must be ≥ 0`);
  if (!(resolved.importanceSamplingCap > 0)) throw new Error(`grpoLoss: importanceSamplingCap must be > 0`);
  if (resolved.lossType === 'dr_grpo' && !(resolved.maxCompletionLength! > 0)) {
    throw new Error('grpoLoss: lossType "dr_grpo" needs maxCompletionLength (its normaliser is B × maxCompletionLength)');
  }
  return resolved;
}


/** One optimiser step's settings besides the optimiser's own: the loss spec plus batching and the learning rate. */
export interface TrainStepConfig extends Omit<GrpoLossConfig, 'numItemsInBatch' | 'gradientAccumulationSteps'> {
  /** A fixed LR, or a schedule of the number of completed optimiser steps (see schedule.ts). */
  learningRate: number | ((step: number) => number);
  /** Global-norm clip (HF's default 1.0); 0 disables clipping (grad_norm is still reported). */
  maxGradNorm?: number;
  /** Completions per forward/backward pass (per_device_train_batch_size); the batch is split into
   *  ceil(B / microBatchSize) micro-batches whose gradients accumulate into one step. Default: all at once. */
  microBatchSize?: number;
  /** Drop truncated completions (finish reason 'length') from the loss entirely. */
  maskTruncatedCompletions?: boolean;
  /** Weight each token by min(exp(old − behaviour), cap) using the sampler's log-probs (Completion.logprobs). */
  importanceSamplingCorrection?: boolean;
  padTokenId?: number;
  /** Sampling temperature: log-probs are of logits / temperature, as TRL computes them. */
  temperature?: number;
  logprobChunkSize?: number;
  gradientCheckpointing?: boolean;
  /** Compute each prompt once for all its completions instead of once per row (default true; off with
   *  gradient checkpointing, and where the model cannot). The log-probs are the same either way. */
  sharePromptPass?: boolean;
}

