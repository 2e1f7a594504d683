// Rotary position embedding, computed in float32 as transformers does:
// inv_freq = 1 / theta^(2i/d) (with linear or llama3 rescaling), freqs = position × inv_freq,
// emb = cat(freqs, freqs), and q' = q·cos + rotate_half(q)·sin with rotate_half(x) = cat(-x2, x1).
import { tf } from './tf.js';

export { ropeInverseFrequencies } from '../../core/llm/rope.js';

/** cos and sin tables [B, T, 1, D] for float32 positions [B, T] (broadcast over heads). */
export function ropeTables(positions: tf.Tensor2D, inverseFrequencies: tf.Tensor1D): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  return tf.tidy(() => {
    const [b, t] = positions.shape;
    const freqs = tf.mul(positions.toFloat().reshape([b, t, 1]), inverseFrequencies.reshape([1, 1, -1]));
    const emb = tf.concat([freqs, freqs], -1).reshape([b, t, 1, -1]) as tf.Tensor4D;
    return { cos: tf.cos(emb), sin: tf.sin(emb) };
  });
}

/** Apply rotary embedding to x [B, T, heads, D]. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const half = x.shape[3] / 2;
    const [x1, x2] = tf.split(x, [half, half], 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  });
}
