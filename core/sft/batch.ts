// Packs SFT examples into one right-padded batch: ids [B, T] and, for the T−1 next-token predictions,
// the targets and a mask that is 1 exactly where the target is a completion token.
import { tf } from '../llm/tf.js';
import type { SftExample } from './examples.js';

export interface SftBatch {
  /** [B, T−1] input ids (the last token predicts nothing). */
  inputs: tf.Tensor2D;
  /** [B, T−1] 1 on real tokens. */
  attentionMask: tf.Tensor2D;
  /** [B, T−1] the next token at each position. */
  targets: tf.Tensor2D;
  /** [B, T−1] 1 where the target is a completion token. */
  lossMask: tf.Tensor2D;
  /** Completion tokens that carry loss. */
  completionTokens: number;
  dispose(): void;
}

export function packSftBatch(examples: readonly SftExample[], padId: number): SftBatch {
  if (examples.length === 0) throw new Error('packSftBatch: no examples');
  const rows = examples.map((e) => [...e.promptIds, ...e.completionIds]);
  const width = Math.max(...rows.map((r) => r.length)) - 1;
  const b = rows.length;
  const inputs = new Int32Array(b * width).fill(padId);
  const mask = new Float32Array(b * width);
  const targets = new Int32Array(b * width).fill(padId);
  const lossMask = new Float32Array(b * width);
  let completionTokens = 0;
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
      }
    }
  });
  const batch = {
    inputs: tf.tensor2d(inputs, [b, width], 'int32'),
    attentionMask: tf.tensor2d(mask, [b, width]),
    targets: tf.tensor2d(targets, [b, width], 'int32'),
    lossMask: tf.tensor2d(lossMask, [b, width]),
    completionTokens,
    dispose() {
      batch.inputs.dispose();
      batch.attentionMask.dispose();
      batch.targets.dispose();
      batch.lossMask.dispose();
    },
  };
  return batch;
}
