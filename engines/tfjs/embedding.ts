// A trainable embedding lookup. tf.gather's gradient needs the UnsortedSegmentSum kernel, which
// tfjs-backend-wasm lacks; here the table's gradient is oneHot(ids)ᵀ · dy, a [V, N]·[N, H] product — cheap
// for the small vocabularies trained from scratch (the only case where embeddings are trained).
import { tf } from './tf.js';

/** rows of `table` [V, H] at `ids` [N] → [N, H], differentiable with respect to the table. */
export function trainableEmbeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const vocab = table.shape[0];
  const op = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([ids]);
    return {
      value: tf.gather(t as tf.Tensor2D, ids),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) =>
        tf.tidy(() => tf.matMul(tf.transpose(tf.oneHot(saved as tf.Tensor1D, vocab).toFloat()), dy as tf.Tensor2D)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(table) as tf.Tensor2D;
}
