// The loss spec: what the policy trainer's step is asked to optimise (TRL's GRPO loss settings and the
// step's batching), as plain data. The tensor code that computes it is loss.ts / train-step.ts.
// Followed: TRL 1.10.0.dev0 (commit f2cd577), trl/trainer/grpo_trainer.py GRPOTrainer._compute_loss and
// _generate_and_score_completions, trl/trainer/grpo_config.py GRPOConfig (defaults); see docs/grpo-loss.md.

export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo' | 'cispo' | 'sapo';
export const LOSS_TYPES: readonly LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'cispo', 'sapo'];

/** Where the policy ratio π/π_old is taken: per token, or one per sequence from the mean log-ratio (GSPO). */
export type ImportanceSamplingLevel = 'token' | 'sequence';
export const IMPORTANCE_SAMPLING_LEVELS: readonly ImportanceSamplingLevel[] = ['token', 'sequence'];

/** The sampler/trainer correction (TRL `vllm_importance_sampling_mode`): the ratio exp(old − behaviour) per
 *  token or per sequence (exp of the summed differences), and out-of-range ratios clipped (truncate, TIS)
 *  or zeroed (mask, MIS). */
export type ImportanceSamplingMode = 'token_truncate' | 'token_mask' | 'sequence_truncate' | 'sequence_mask';
export const IMPORTANCE_SAMPLING_MODES: readonly ImportanceSamplingMode[] = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask'];

export interface GrpoLossConfig {
  /** Lower clip range ε (TRL `epsilon`). */
  epsilon?: number;
  /** Upper clip range (TRL `epsilon_high`); defaults to `epsilon`. For cispo: the cap of the detached ratio (ε_max). */
  epsilonHigh?: number;
  /** Two-sided clipping (TRL `delta`, INTELLECT-2): the unclipped ratio is capped at delta too. Off when undefined. */
  delta?: number;
  /** KL coefficient; 0 (TRL's default) skips the reference policy entirely. */
  beta?: number;
  lossType?: LossType;
  importanceSamplingLevel?: ImportanceSamplingLevel;
  /** sapo's gate temperatures for positive and non-positive advantages (TRL 1.0 and 1.05). */
  sapoTemperaturePos?: number;
  sapoTemperatureNeg?: number;
  /** Keep only the top ρ of tokens by entropy in the policy term (TRL `top_entropy_quantile`; 1 keeps all). */
  topEntropyQuantile?: number;
  /** Off-policy sequence mask (TRL `off_policy_mask_threshold`, DeepSeek-V3.2): a completion with A < 0 whose
   *  mean (behaviour − current) log-prob exceeds this is left out. Off when undefined. */
  offPolicyMaskThreshold?: number;
  /** dr_grpo's constant normaliser: B × maxCompletionLength. */
  maxCompletionLength?: number;
  /** dapo's and cispo's normaliser: active completion tokens in the whole accumulated batch (defaults to this micro-batch's). */
  numItemsInBatch?: number;
  /** grpo/bnpo/dr_grpo/sapo divide by this so that summed micro-batch gradients average (HF Trainer's convention); dapo/cispo's normaliser already covers the whole batch. */
  gradientAccumulationSteps?: number;
  /** How the sampler/trainer correction is taken (TRL default 'sequence_mask'). */
  importanceSamplingMode?: ImportanceSamplingMode;
  /** Apply the sampler/trainer correction (needs the sampler's log-probs). Default: whenever they are given. */
  importanceSamplingCorrection?: boolean;
  /** Upper bound C_max of the correction's ratio (TRL `vllm_importance_sampling_clip_max`, default 3); null: none. */
  importanceSamplingClipMax?: number | null;
  /** Lower bound C_min (TRL `vllm_importance_sampling_clip_min`); none by default. */
  importanceSamplingClipMin?: number | null;
}

export function resolveLossConfig(config: GrpoLossConfig) {
  const epsilon = config.epsilon ?? 0.2;
  const resolved = {
    epsilon,
    epsilonHigh: config.epsilonHigh ?? epsilon,
    delta: config.delta,
    beta: config.beta ?? 0,
    lossType: config.lossType ?? 'grpo',
    importanceSamplingLevel: config.importanceSamplingLevel ?? 'token',
    sapoTemperaturePos: config.sapoTemperaturePos ?? 1.0,
    sapoTemperatureNeg: config.sapoTemperatureNeg ?? 1.05,
    topEntropyQuantile: config.topEntropyQuantile ?? 1,
    offPolicyMaskThreshold: config.offPolicyMaskThreshold,
    maxCompletionLength: config.maxCompletionLength,
    numItemsInBatch: config.numItemsInBatch,
    gradientAccumulationSteps: config.gradientAccumulationSteps ?? 1,
    importanceSamplingMode: config.importanceSamplingMode ?? 'sequence_mask',
    importanceSamplingClipMax: config.importanceSamplingClipMax === undefined ? 3.0 : config.importanceSamplingClipMax,
    importanceSamplingClipMin: config.importanceSamplingClipMin ?? null,
  };
  const fail = (message: string) => {
    throw new Error(`grpoLoss: ${message}`);
  };
  if (!LOSS_TYPES.includes(resolved.lossType)) fail(`lossType "${resolved.lossType}" is not one of ${LOSS_TYPES.join(', ')}`);
  if (!IMPORTANCE_SAMPLING_LEVELS.includes(resolved.importanceSamplingLevel)) {
    fail(`importanceSamplingLevel "${resolved.importanceSamplingLevel}" is not one of ${IMPORTANCE_SAMPLING_LEVELS.join(', ')}`);
  }
  if (!IMPORTANCE_SAMPLING_MODES.includes(resolved.importanceSamplingMode)) {
    fail(`importanceSamplingMode "${resolved.importanceSamplingMode}" is not one of ${IMPORTANCE_SAMPLING_MODES.join(', ')}`);
  }
  if (!(resolved.epsilon >= 0) || !(resolved.epsilonHigh >= 0)) fail('epsilon and epsilonHigh must be ≥ 0');
  if (resolved.delta !== undefined && !(resolved.delta > 0)) fail(`delta must be > 0 (got ${resolved.delta})`);
  if (!(resolved.sapoTemperaturePos > 0) || !(resolved.sapoTemperatureNeg > 0)) fail('sapo temperatures must be > 0');
  if (!(resolved.topEntropyQuantile >= 0 && resolved.topEntropyQuantile <= 1)) fail(`topEntropyQuantile must be in [0, 1] (got ${resolved.topEntropyQuantile})`);
  const { importanceSamplingClipMax: max, importanceSamplingClipMin: min } = resolved;
  if (max !== null && !(max > 0)) fail(`importanceSamplingClipMax must be > 0 or null (got ${max})`);
  if (min !== null && !(min >= 0)) fail(`importanceSamplingClipMin must be ≥ 0 or null (got ${min})`);
  if (min !== null && max !== null && !(min < max)) fail(`importanceSamplingClipMin (${min}) must be less than importanceSamplingClipMax (${max})`);
  if (min === null && max === null && resolved.importanceSamplingMode.endsWith('_truncate')) {
    fail(`importanceSamplingMode "${resolved.importanceSamplingMode}" needs importanceSamplingClipMin or importanceSamplingClipMax`);
  }
  if (resolved.lossType === 'dr_grpo' && !(resolved.maxCompletionLength! > 0)) {
    fail('lossType "dr_grpo" needs maxCompletionLength (its normaliser is B × maxCompletionLength)');
  }
  return resolved;
}

export type ResolvedLossConfig = ReturnType<typeof resolveLossConfig>;

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
  padTokenId?: number;
  /** Sampling temperature: log-probs are of logits / temperature, as TRL computes them. */
  temperature?: number;
  logprobChunkSize?: number;
  gradientCheckpointing?: boolean;
  /** Compute each prompt once for all its completions instead of once per row (default true; off with
   *  gradient checkpointing, and where the model cannot). The log-probs are the same either way. */
  sharePromptPass?: boolean;
}
