// Matrix products that never ask the backend for a transposed operand. tfjs-backend-wasm runs
// matMul(a, b, transposeA/transposeB) about ten times slower than the plain product, and tfjs's own
// matMul gradient uses exactly those flags; here transposes are explicit copies, which cost far less.
import { tf } from './tf.js';
import { batchMatMul } from './wasm-batch-matmul.js';

/** Swap the last two axes. */
export function swapLastAxes<T extends tf.Tensor>(t: T): T {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1], perm[t.rank - 2]];
  return tf.transpose(t, perm) as T;
}

/** a · b over the last two axes (equal batch axes), differentiable in both; batched on wasm by the SIMD kernel. */
export function matMul<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  const op = tf.customGrad(((x: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: batchMatMul(x, y),
      gradFunc: (dy: tf.Tensor, [xs, ys]: tf.Tensor[]) => [batchMatMul(dy, swapLastAxes(ys)), batchMatMul(swapLastAxes(xs), dy)],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(a, b) as T;
}

/** x [N, in] · w [in, out] where w is a frozen weight: the gradient flows to x only. */
export function frozenMatMul(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    save([input]);
    return {
      value: tf.matMul(input as tf.Tensor2D, w),
      gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, swapLastAxes(w)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}

/** h [N, H] · Wᵀ for an unembedding W [V, H] (frozen), computed as (W · hᵀ)ᵀ: the fast layout for a wide V. */
export function unembed(h: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(h))) as tf.Tensor2D);
}
