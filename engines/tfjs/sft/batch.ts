// Packs SFT examples into one right-padded batch: ids [B, T] and, for the T−1 next-token predictions,
// the targets and a mask that is 1 exactly where the target is a completion token.
import { tf } from '../tf.js';
import type { SftExample } from '../../../core/sft/examples.js';

export interface SftBatch {
  /** [B, T−1] input ids (the last token predicts nothing). */
  inputs: tf.Tensor2D;
  /** [B, T−1] 1 on real tokens. */
  attentionMask: tf.Tensor2D;
  /** [B, T−1] the next token at each position. */
  targets: tf.Tensor2D;
  /** [B, T−1] loss weight of each target: 1 for completion tokens, `promptLossWeight` for prompt tokens, 0 on padding. */
  lossMask: tf.Tensor2D;
  /** Completion tokens that carry loss. */
  completionTokens: number;
  /** Sum of lossMask: the loss is the weighted sum over targets divided by this. */
  lossWeight: number;
  dispose(): void;
}

/**
 * `promptLossWeight` (default 0: completion-only loss) also trains next-token prediction on the prompt,
 * at that weight; it gives a model trained from scratch many more tokens to learn attention from.
 */
export function packSftBatch(examples: readonly SftExample[], padId: number, promptLossWeight = 0): SftBatch {
  if (examples.length === 0) throw new Error('packSftBatch: no examples');
  if (!(promptLossWeight >= 0)) throw new Error(`packSftBatch: promptLossWeight must be ≥ 0, got ${promptLossWeight}`);
  const rows = examples.map((e) => [...e.promptIds, ...e.completionIds]);
  const width = Math.max(...rows.map((r) => r.length)) - 1;
  const b = rows.length;
  const inputs = new Int32Array(b * width).fill(padId);
  const mask = new Float32Array(b * width);
  const targets = new Int32Array(b * width).fill(padId);
  const lossMask = new Float32Array(b * width);
  let completionTokens = 0;
  let lossWeight = 0;
  examples.forEach((e, i) => {
    const row = rows[i];
    for (let t = 0; t < row.length - 1; t++) {
      inputs[i * width + t] = row[t];
      mask[i * width + t] = 1;
      targets[i * width + t] = row[t + 1];
      // position t predicts token t+1, a completion token when t+1 ≥ prompt length
      if (t + 1 >= e.promptIds.length) {
        lossMask[i * width + t] = 1;
        completionTokens++;
      } else {
        lossMask[i * width + t] = promptLossWeight;
      }
      lossWeight += lossMask[i * width + t];
    }
  });
  const batch = {
    inputs: tf.tensor2d(inputs, [b, width], 'int32'),
    attentionMask: tf.tensor2d(mask, [b, width]),
    targets: tf.tensor2d(targets, [b, width], 'int32'),
    lossMask: tf.tensor2d(lossMask, [b, width]),
    completionTokens,
    lossWeight,
    dispose() {
      batch.inputs.dispose();
      batch.attentionMask.dispose();
      batch.targets.dispose();
      batch.lossMask.dispose();
    },
  };
  return batch;
}
