// The GRPO loss as TRL's GRPOTrainer computes it, token by token, then normalised per `lossType`:
//   coef1 = exp(logp − old), coef2 = clip(coef1, 1 − ε, 1 + ε_high)
//   perToken = −min(coef1·A, coef2·A)
//   × min(exp(old − behaviour), cap)                 (importance-sampling correction, when behaviour given)
//   + β·(exp(ref − logp) − (ref − logp) − 1)           (k3 KL estimator, when β ≠ 0)
// The IS weight multiplies the surrogate only, never the KL term (TRL's order).
import { tf } from '../tf.js';
import { detach } from './detach.js';
import { resolveLossConfig, type GrpoLossConfig } from '../../../core/grpo/loss-spec.js';

export { LOSS_TYPES, resolveLossConfig, type GrpoLossConfig, type LossType } from '../../../core/grpo/loss-spec.js';

export interface GrpoLossInputs {
  /** Current-policy log-probs of the completion tokens, [B, T]; the loss is differentiable w.r.t. these. */
  logprobs: tf.Tensor2D;
  /** Log-probs from the first pass over this generation batch; omitted means `logprobs` detached (num_iterations = 1). */
  oldLogprobs?: tf.Tensor2D;
  /** Reference-policy log-probs; required when beta ≠ 0. */
  refLogprobs?: tf.Tensor2D;
  /** The sampler's log-probs; when given, the truncated importance-sampling correction is applied. */
  behaviourLogprobs?: tf.Tensor2D;
  /** 1 for completion tokens that count, 0 for padding (and for whole truncated completions when masked). */
  mask: tf.Tensor2D;
  /** One advantage per completion, [B]. */
  advantages: tf.Tensor1D;
}

export interface GrpoLossOutput {
  loss: tf.Scalar;
  /** TRL-named scalars: `kl` (when ref given), `clip_ratio/low_mean`, `clip_ratio/high_mean`, `clip_ratio/region_mean`, `sampling/importance_sampling_ratio/mean` (when behaviour given). */
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
  check('mask', mask, [B, T]);
  check('advantages', advantages, [B]);
  if (cfg.beta !== 0 && !inputs.refLogprobs) throw new Error(`grpoLoss: beta is ${cfg.beta} but no refLogprobs were given`);

  const old = inputs.oldLogprobs ? detach(inputs.oldLogprobs) : detach(logprobs);
  const A = advantages.reshape([B, 1]);
  const coef1 = tf.exp(tf.sub(logprobs, old));
  const coef2 = tf.clipByValue(coef1, 1 - cfg.epsilon, 1 + cfg.epsilonHigh);
  let perToken: tf.Tensor = tf.neg(tf.minimum(tf.mul(coef1, A), tf.mul(coef2, A)));

  const metrics: Record<string, tf.Scalar> = {};
  const tokenCount = tf.maximum(tf.sum(mask), 1);
  const maskedMean = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), tokenCount) as tf.Scalar;

  if (inputs.behaviourLogprobs) {
    const isRatio = tf.minimum(tf.exp(tf.sub(old, detach(inputs.behaviourLogprobs))), cfg.importanceSamplingCap);
    perToken = tf.mul(perToken, isRatio);
    metrics['sampling/importance_sampling_ratio/mean'] = maskedMean(isRatio);
  }
  if (inputs.refLogprobs) {
    const refMinusLogp = tf.sub(detach(inputs.refLogprobs), logprobs);
    const kl = tf.sub(tf.sub(tf.exp(refMinusLogp), refMinusLogp), 1);
    if (cfg.beta !== 0) perToken = tf.add(perToken, tf.mul(kl, cfg.beta));
    metrics.kl = maskedMean(detach(kl));
  }

  const maskedSum = tf.sum(tf.mul(perToken, mask));
  let loss: tf.Tensor;
  switch (cfg.lossType) {
    case 'grpo': {
      const perSequence = tf.div(tf.sum(tf.mul(perToken, mask), 1), tf.maximum(tf.sum(mask, 1), 1));
      loss = tf.div(tf.mean(perSequence), cfg.gradientAccumulationSteps);
      break;
    }
    case 'bnpo':
      loss = tf.div(tf.div(maskedSum, tokenCount), cfg.gradientAccumulationSteps);
      break;
    case 'dr_grpo':
      loss = tf.div(maskedSum, B * cfg.maxCompletionLength! * cfg.gradientAccumulationSteps);
      break;
    case 'dapo':
      loss = cfg.numItemsInBatch !== undefined ? tf.div(maskedSum, Math.max(cfg.numItemsInBatch, 1)) : tf.div(maskedSum, tokenCount);
      break;
  }

  const coef1Detached = detach(coef1);
  const isLow = tf.logicalAnd(tf.less(coef1Detached, 1 - cfg.epsilon), tf.less(A, 0)).toFloat();
  const isHigh = tf.logicalAnd(tf.greater(coef1Detached, 1 + cfg.epsilonHigh), tf.greater(A, 0)).toFloat();
  metrics['clip_ratio/low_mean'] = maskedMean(isLow);
  metrics['clip_ratio/high_mean'] = maskedMean(isHigh);
  metrics['clip_ratio/region_mean'] = maskedMean(tf.logicalOr(isLow.cast('bool'), isHigh.cast('bool')).toFloat());
  return { loss: loss as tf.Scalar, metrics };
}
