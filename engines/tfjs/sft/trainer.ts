// One SFT optimiser step: mean cross-entropy over the batch's completion tokens, computed from the
// hidden states through the model's chunked token log-probs (no [B, T, V] logits), then global-norm
// clipping and AdamW at the scheduled learning rate. Trains whatever model.trainableVariables() lists
// (all base weights after model.trainBaseWeights(), or LoRA matrices).
import { tf } from '../tf.js';
import type { CausalLM } from '../model.js';
import { AdamW, clipGradNorm } from '../grpo/optimizer.js';
import { readFloat32 } from '../read-back.js';
import type { SftBatch } from './batch.js';
import type { SftStepResult, SftTrainerConfig } from '../../../core/engine/model-engine.js';

export type { SftStepResult, SftTrainerConfig };

/** Mean −log p over completion tokens (weighted, with prompt tokens when the batch gives them weight); a scalar tensor. */
export function sftLoss(model: CausalLM, batch: SftBatch): tf.Scalar {
  return tf.tidy(() => {
    const hidden = model.hidden(batch.inputs, batch.attentionMask, undefined, { training: true });
    const { logprobs } = model.tokenLogprobs(hidden, batch.targets);
    const total = tf.sum(tf.mul(logprobs, batch.lossMask));
    return tf.div(tf.neg(total), Math.max(1e-9, batch.lossWeight)) as tf.Scalar;
  });
}



export class SftTrainer {
  readonly optimizer: AdamW;
  private readonly variables: tf.Variable[];

  constructor(
    readonly model: CausalLM,
    readonly config: SftTrainerConfig,
  ) {
    this.variables = model.trainableVariables();
    if (this.variables.length === 0) throw new Error('SFT: the model has no trainable weights (call model.trainBaseWeights() or attach LoRA)');
    this.optimizer = new AdamW(this.variables, { betas: config.betas, weightDecay: config.weightDecay });
  }

  get stepCount(): number {
    return this.optimizer.stepCount;
  }

  /**
   * One optimiser step. Loss and grad norm come back in one asynchronous read, before the update is
   * applied, so a non-finite loss leaves the weights untouched.
   */
  async step(batch: SftBatch): Promise<SftStepResult> {
    const { value, grads } = tf.variableGrads(() => sftLoss(this.model, batch), this.variables);
    const list = this.variables.map((v) => grads[v.name]);
    const present = list.filter((g): g is tf.Tensor => g !== undefined);
    const { norm, grads: clipped } = clipGradNorm(present, this.config.maxGradNorm);
    const scalars = tf.stack([value, norm]);
    try {
      const [[loss, gradNorm]] = await readFloat32([scalars], 'SFT step');
      if (!Number.isFinite(loss)) throw new Error(`SFT step ${this.stepCount + 1}: loss is ${loss}; lower the learning rate`);
      const learningRate = this.config.learningRate(this.optimizer.stepCount);
      let next = 0;
      this.optimizer.step(list.map((g) => (g === undefined ? undefined : clipped[next++])), learningRate);
      return { step: this.optimizer.stepCount, loss, gradNorm, learningRate, completionTokens: batch.completionTokens, batchTokens: batch.inputs.shape[0] * batch.inputs.shape[1] };
    } finally {
      if (clipped !== present) tf.dispose(clipped);
      tf.dispose([value, norm, scalars, ...present]);
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
