// Rotary position embedding, computed in float32 as transformers does:
// inv_freq = 1 / theta^(2i/d) (with linear or llama3 rescaling), freqs = position × inv_freq,
// emb = cat(freqs, freqs), and q' = q·cos + rotate_half(q)·sin with rotate_half(x) = cat(-x2, x1).
import { tf } from './tf.js';
import type { ModelConfig } from '../../core/llm/config.js';

const f = Math.fround;

export function ropeInverseFrequencies(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const dim = config.headDim;
  const base = f(config.ropeTheta);
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f(1 / f(Math.pow(base, f(f(2 * i) / dim))));
  const s = config.ropeScaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((v) => f(v / s.factor));
  // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
  const old = s.originalMaxPositionEmbeddings!;
  const low = s.lowFreqFactor!;
  const high = s.highFreqFactor!;
  const lowFreqWavelen = old / low;
  const highFreqWavelen = old / high;
  return inv.map((v) => {
    const wavelen = f((2 * Math.PI) / v);
    const scaled = wavelen > lowFreqWavelen ? f(v / s.factor) : v;
    if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) return scaled;
    const smooth = f((old / wavelen - low) / (high - low));
    return f(f((1 - smooth) * f(scaled / s.factor)) + f(smooth * scaled));
  });
}

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
