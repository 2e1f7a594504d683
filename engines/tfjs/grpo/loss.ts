// The GRPO loss as TRL's GRPOTrainer._compute_loss computes it (TRL 1.10.0.dev0; docs/grpo-loss.md cites
// each option), token by token, then normalised per `lossType`:
//   log w = logp − old                        (importanceSamplingLevel 'token'; 'sequence', GSPO: the masked
//                                               mean over the completion, one w per row)
//   grpo/bnpo/dr_grpo/dapo: −min(w·A, clip(w, 1 − ε, 1 + ε_high)·A), w capped at delta when set
//   cispo:                  −sg(min(w, ε_high))·A·logp            (sg: no gradient through the weight)
//   sapo:                   −σ(τ(w − 1))·4/τ·A, τ = τ_pos when A > 0, else τ_neg
//   × off-policy sequence mask × top-entropy mask × sampler/trainer correction  (each when on)
//   + β·(exp(ref − logp) − (ref − logp) − 1)   (k3 KL estimator, when β ≠ 0)
// The correction weights the policy term only, never the KL term (TRL's order).
import { tf } from '../tf.js';
import { detach, withoutGradient } from './detach.js';
import { resolveLossConfig, type GrpoLossConfig, type ResolvedLossConfig } from '../../../core/grpo/loss-spec.js';

export { LOSS_TYPES, resolveLossConfig, type GrpoLossConfig, type LossType } from '../../../core/grpo/loss-spec.js';

export interface GrpoLossInputs {
  /** Current-policy log-probs of the completion tokens, [B, T]; the loss is differentiable w.r.t. these. */
  logprobs: tf.Tensor2D;
  /** Log-probs from the first pass over this generation batch; omitted means `logprobs` detached (num_iterations = 1). */
  oldLogprobs?: tf.Tensor2D;
  /** Reference-policy log-probs; required when beta ≠ 0. */
  refLogprobs?: tf.Tensor2D;
  /** The sampler's log-probs (of the distribution it drew from): the correction's denominator and the
   *  off-policy mask's reference. */
  behaviourLogprobs?: tf.Tensor2D;
  /** Per-token entropy of the current policy, [B, T]; required when topEntropyQuantile < 1. */
  entropy?: tf.Tensor2D;
  /** 1 for completion tokens that count, 0 for padding (and for whole truncated completions when masked). */
  mask: tf.Tensor2D;
  /** One advantage per completion, [B]. */
  advantages: tf.Tensor1D;
}

export interface GrpoLossOutput {
  loss: tf.Scalar;
  /**
   * TRL-named scalars: `kl` (when ref given); `clip_ratio/low_mean|high_mean|region_mean|low_min|high_max`
   * (clipped losses) or `cispo_clip_ratio`; with the correction `sampling/sampling_logp_difference/mean|max`,
   * `sampling/importance_sampling_ratio/min|mean|max` and ours `sampling/importance_sampling_masked_fraction`
   * (mask modes) or `sampling/importance_sampling_truncated_fraction` (truncate modes). A name ending in
   * `/max` or `_max` (`/min`, `_min`) is a max (min): a caller combining micro-batches takes the max (min) of them.
   */
  metrics: Record<string, tf.Scalar>;
}

export function grpoLoss(inputs: GrpoLossInputs, config: GrpoLossConfig = {}): GrpoLossOutput {
  const cfg = resolveLossConfig(config);
  const { logprobs, mask, advantages } = inputs;
  const [B, T] = logprobs.shape;
  const check = (name: string, t: tf.Tensor | undefined, shape: number[]) => {
    if (t && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`grpoLoss: ${name} has shape [${t.shape}], expected [${shape}] (like logprobs)`);
    }
  };
  check('oldLogprobs', inputs.oldLogprobs, [B, T]);
  check('refLogprobs', inputs.refLogprobs, [B, T]);
  check('behaviourLogprobs', inputs.behaviourLogprobs, [B, T]);
  check('entropy', inputs.entropy, [B, T]);
  check('mask', mask, [B, T]);
  check('advantages', advantages, [B]);
  if (cfg.beta !== 0 && !inputs.refLogprobs) throw new Error(`grpoLoss: beta is ${cfg.beta} but no refLogprobs were given`);
  if (cfg.topEntropyQuantile < 1 && !inputs.entropy) throw new Error(`grpoLoss: topEntropyQuantile is ${cfg.topEntropyQuantile} but no entropy was given`);
  const correct = config.importanceSamplingCorrection ?? inputs.behaviourLogprobs !== undefined;
  if (correct && !inputs.behaviourLogprobs) throw new Error("grpoLoss: the importance-sampling correction needs the sampler's log-probs (behaviourLogprobs)");

  const old = inputs.oldLogprobs ? detach(inputs.oldLogprobs) : detach(logprobs);
  const A = advantages.reshape([B, 1]);
  const rowTokens = tf.maximum(tf.sum(mask, 1, true), 1); // [B, 1]
  const logRatio = tf.sub(logprobs, old);
  // [B, T] per token, or [B, 1] per sequence (broadcast over the row's tokens from here on).
  const logWeight = cfg.importanceSamplingLevel === 'token' ? logRatio : tf.div(tf.sum(tf.mul(logRatio, mask), 1, true), rowTokens);
  let coef1: tf.Tensor = tf.exp(logWeight);

  const metrics: Record<string, tf.Scalar> = {};
  const tokenCount = tf.maximum(tf.sum(mask), 1);
  /** Mean over the real tokens, or over the rows for a per-sequence [B, 1] value (TRL's global_masked_mean). */
  const maskedMean = (x: tf.Tensor) => (x.shape[1] === 1 ? tf.mean(x) : tf.div(tf.sum(tf.mul(x, mask)), tokenCount)) as tf.Scalar;

  let perToken: tf.Tensor;
  switch (cfg.lossType) {
    case 'cispo': {
      const weight = detach(tf.minimum(coef1, cfg.epsilonHigh));
      perToken = tf.neg(tf.mul(tf.mul(weight, A), logprobs));
      metrics.cispo_clip_ratio = maskedMean(tf.logicalAnd(tf.greater(detach(coef1), cfg.epsilonHigh), tf.greater(A, 0)).toFloat());
      break;
    }
    case 'sapo': {
      const tau = tf.where(tf.greater(A, 0), tf.fill([B, 1], cfg.sapoTemperaturePos), tf.fill([B, 1], cfg.sapoTemperatureNeg));
      const gate = tf.div(tf.mul(tf.sigmoid(tf.mul(tau, tf.sub(coef1, 1))), 4), tau);
      perToken = tf.neg(tf.mul(gate, A));
      break;
    }
    default: {
      const coef2 = tf.clipByValue(coef1, 1 - cfg.epsilon, 1 + cfg.epsilonHigh);
      if (cfg.delta !== undefined) coef1 = tf.minimum(coef1, cfg.delta);
      perToken = tf.neg(tf.minimum(tf.mul(coef1, A), tf.mul(coef2, A)));
      Object.assign(metrics, clipMetrics(detach(coef1), A, mask, cfg, maskedMean));
    }
  }

  if (cfg.offPolicyMaskThreshold !== undefined) {
    perToken = tf.mul(perToken, offPolicySequenceMask(inputs.behaviourLogprobs ?? old, logprobs, mask, rowTokens, A, cfg.offPolicyMaskThreshold));
  }
  if (cfg.topEntropyQuantile < 1) perToken = tf.mul(perToken, highEntropyMask(inputs.entropy!, mask, cfg.topEntropyQuantile));
  if (correct) {
    const { ratio, metrics: correctionMetrics } = samplerCorrection(old, detach(inputs.behaviourLogprobs!), mask, cfg);
    perToken = tf.mul(perToken, ratio);
    Object.assign(metrics, correctionMetrics);
  }
  if (inputs.refLogprobs) {
    const refMinusLogp = tf.sub(detach(inputs.refLogprobs), logprobs);
    const kl = tf.sub(tf.sub(tf.exp(refMinusLogp), refMinusLogp), 1);
    if (cfg.beta !== 0) perToken = tf.add(perToken, tf.mul(kl, cfg.beta));
    metrics.kl = maskedMean(detach(kl));
  }

  const maskedLoss = tf.mul(perToken, mask); // [B, T] (a per-sequence term broadcasts over its tokens)
  const maskedSum = tf.sum(maskedLoss);
  let loss: tf.Tensor;
  switch (cfg.lossType) {
    case 'grpo':
    case 'sapo':
      loss = tf.div(tf.mean(tf.div(tf.sum(maskedLoss, 1, true), rowTokens)), cfg.gradientAccumulationSteps);
      break;
    case 'bnpo':
      loss = tf.div(tf.div(maskedSum, tokenCount), cfg.gradientAccumulationSteps);
      break;
    case 'dr_grpo':
      loss = tf.div(maskedSum, B * cfg.maxCompletionLength! * cfg.gradientAccumulationSteps);
      break;
    case 'dapo':
    case 'cispo':
      loss = cfg.numItemsInBatch !== undefined ? tf.div(maskedSum, Math.max(cfg.numItemsInBatch, 1)) : tf.div(maskedSum, tokenCount);
      break;
  }
  return { loss: loss as tf.Scalar, metrics };
}

/** TRL's clip ratios of the clipped losses: low (w < 1 − ε with A < 0), high (w > 1 + ε_high with A > 0), either;
 *  and the smallest low / largest high per-sequence fraction. */
function clipMetrics(coef1: tf.Tensor, A: tf.Tensor, mask: tf.Tensor2D, cfg: ResolvedLossConfig, maskedMean: (x: tf.Tensor) => tf.Scalar): Record<string, tf.Scalar> {
  const isLow = tf.logicalAnd(tf.less(coef1, 1 - cfg.epsilon), tf.less(A, 0));
  const isHigh = tf.logicalAnd(tf.greater(coef1, 1 + cfg.epsilonHigh), tf.greater(A, 0));
  // Per sequence: the row's fraction of clipped tokens (rows without tokens are left out, as TRL's nanmin).
  const rowTokens = tf.sum(mask, 1, true);
  const hasTokens = tf.greater(rowTokens, 0);
  const perRow = (x: tf.Tensor) => (x.shape[1] === 1 ? x : tf.div(tf.sum(tf.mul(x, mask), 1, true), tf.maximum(rowTokens, 1)));
  const lowRows = perRow(isLow.toFloat());
  const highRows = perRow(isHigh.toFloat());
  return {
    'clip_ratio/low_mean': maskedMean(isLow.toFloat()),
    'clip_ratio/high_mean': maskedMean(isHigh.toFloat()),
    'clip_ratio/region_mean': maskedMean(tf.logicalOr(isLow, isHigh).toFloat()),
    'clip_ratio/low_min': tf.min(tf.where(hasTokens, lowRows, tf.onesLike(lowRows).mul(Infinity))) as tf.Scalar,
    'clip_ratio/high_max': tf.max(tf.where(hasTokens, highRows, tf.zerosLike(highRows))) as tf.Scalar,
  };
}

/**
 * The off-policy sequence mask (DeepSeek-V3.2 eq. 9; TRL get_off_policy_mask), [B, 1]: keep a completion
 * when A ≥ 0 or its mean (sampling − current) log-prob is at most the threshold.
 */
function offPolicySequenceMask(sampling: tf.Tensor2D, logprobs: tf.Tensor2D, mask: tf.Tensor2D, rowTokens: tf.Tensor, A: tf.Tensor, threshold: number): tf.Tensor {
  return withoutGradient(
    (s, lp) => {
      const meanKl = tf.div(tf.sum(tf.mul(tf.sub(s, lp), mask), 1, true), rowTokens);
      return tf.logicalOr(tf.greaterEqual(A, 0), tf.lessEqual(meanKl, threshold)).toFloat();
    },
    sampling,
    logprobs,
  );
}

/**
 * The top-ρ entropy mask (TRL get_high_entropy_mask): tokens whose entropy is at least the (1 − ρ) quantile
 * of the real tokens' entropies (torch.quantile's linear interpolation), padding never kept.
 */
function highEntropyMask(entropy: tf.Tensor2D, mask: tf.Tensor2D, rho: number): tf.Tensor {
  // TensorFlow.js has no gradient for TopK, and none is wanted through a mask.
  return withoutGradient((e, m) => highEntropyMaskValue(e as tf.Tensor2D, m as tf.Tensor2D, rho), entropy, mask);
}

function highEntropyMaskValue(entropy: tf.Tensor2D, mask: tf.Tensor2D, rho: number): tf.Tensor {
  const size = entropy.size;
  const real = tf.greater(mask, 0);
  // Padding sorts last (entropies are ≥ 0), so the first n of the descending order are the real tokens.
  const descending = tf.topk(tf.where(real, entropy, tf.fill(entropy.shape, -1e9)).reshape([size]), size).values;
  const last = tf.sub(tf.sum(mask), 1); // n − 1
  const position = tf.mul(1 - rho, last); // ascending position of the quantile
  const below = tf.floor(position);
  const at = (ascending: tf.Tensor) => tf.gather(descending, tf.clipByValue(tf.sub(last, ascending), 0, size - 1).toInt().reshape([1]));
  const low = at(below);
  const high = at(tf.ceil(position));
  const threshold = tf.add(low, tf.mul(tf.sub(high, low), tf.sub(position, below)));
  return tf.logicalAnd(tf.greaterEqual(entropy, threshold), real).toFloat();
}

/**
 * The sampler/trainer correction (TRL _generate_and_score_completions, `vllm_importance_sampling_mode`):
 * ratio = exp(old − behaviour) per token, or exp of the row's summed differences per sequence ([B, 1]);
 * truncate modes clip it to [C_min, C_max], mask modes zero it outside. Metrics under TRL's names.
 */
function samplerCorrection(old: tf.Tensor2D, behaviour: tf.Tensor2D, mask: tf.Tensor2D, cfg: ResolvedLossConfig): { ratio: tf.Tensor; metrics: Record<string, tf.Scalar> } {
  const diff = tf.mul(tf.sub(old, behaviour), mask);
  const perSequence = cfg.importanceSamplingMode.startsWith('sequence');
  const raw = tf.exp(perSequence ? tf.sum(diff, 1, true) : diff);
  const min = cfg.importanceSamplingClipMin ?? -Infinity;
  const max = cfg.importanceSamplingClipMax ?? Infinity;
  const outside = tf.logicalOr(tf.less(raw, min), tf.greater(raw, max));
  const truncate = cfg.importanceSamplingMode.endsWith('truncate');
  // A constant of the backward pass (old may be the current log-probs, detached).
  const ratio = withoutGradient((r) => (truncate ? tf.clipByValue(r, min, max) : tf.where(outside, tf.zerosLike(r), r)), raw);

  const real = tf.greater(mask, 0);
  const count = tf.maximum(tf.sum(mask), 1);
  const absDiff = tf.abs(diff);
  // Statistics over the real tokens (token modes) or over the rows (sequence modes), as TRL flattens them.
  const counted = perSequence ? tf.onesLike(ratio) : mask;
  const countedBool = tf.greater(counted, 0);
  const n = tf.maximum(tf.sum(counted), 1);
  return {
    ratio,
    metrics: {
      'sampling/sampling_logp_difference/mean': tf.div(tf.sum(absDiff), count) as tf.Scalar,
      'sampling/sampling_logp_difference/max': tf.max(tf.where(real, absDiff, tf.zerosLike(absDiff))) as tf.Scalar,
      'sampling/importance_sampling_ratio/min': tf.min(tf.where(countedBool, ratio, tf.fill(ratio.shape, Infinity))) as tf.Scalar,
      'sampling/importance_sampling_ratio/mean': tf.div(tf.sum(tf.mul(ratio, counted)), n) as tf.Scalar,
      'sampling/importance_sampling_ratio/max': tf.max(tf.where(countedBool, ratio, tf.fill(ratio.shape, -Infinity))) as tf.Scalar,
      [truncate ? 'sampling/importance_sampling_truncated_fraction' : 'sampling/importance_sampling_masked_fraction']: tf.div(
        tf.sum(tf.mul(outside.toFloat(), counted)),
        n,
      ) as tf.Scalar,
    },
  };
}
