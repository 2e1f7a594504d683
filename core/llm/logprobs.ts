// Per-token log-probabilities of chosen tokens without materialising [N, V] logits at once: the
// positions are processed in chunks, and a custom gradient recomputes each chunk's softmax in the
// backward pass (d logp / d logits = onehot(target) − softmax), so only [chunk, V] exists at a time.
import { tf } from './tf.js';
import { unembed } from './matmul.js';

export interface TokenLogprobOptions {
  chunkSize?: number;
  withEntropy?: boolean;
  temperature?: number;
}

/**
 * hidden [N, H] (differentiable), unembedding [V, H] (a constant), targets [N] int32 →
 * log-probs [N] of the targets under softmax(hidden·Wᵀ / temperature), and, if asked, the entropy [N]
 * of that distribution (not differentiable).
 */
export function chunkedTokenLogprobs(
  hidden: tf.Tensor2D,
  unembedding: tf.Tensor2D,
  targets: tf.Tensor1D,
  options: TokenLogprobOptions = {},
): { logprobs: tf.Tensor1D; entropy?: tf.Tensor1D } {
  const [n, h] = hidden.shape;
  const vocab = unembedding.shape[0];
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`tokenLogprobs: temperature must be > 0, got ${temperature}`);
  if (targets.shape[0] !== n) throw new Error(`tokenLogprobs: ${n} hidden rows but ${targets.shape[0]} targets`);
  // Default chunk: about 16M logits (64 MB) at a time.
  const chunk = Math.max(1, Math.min(n, options.chunkSize ?? Math.floor((1 << 24) / vocab)));

  const chunkLogits = (rows: tf.Tensor2D) => {
    const logits = unembed(rows, unembedding);
    return temperature === 1 ? logits : tf.div(logits, temperature);
  };

  const logprobParts: tf.Tensor1D[] = [];
  const entropyParts: tf.Tensor1D[] = [];
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const rows = tf.slice(hidden, [start, 0], [size, h]);
    const chunkTargets = tf.slice(targets, [start], [size]);
    const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
      // Save the targets too: the caller disposes its own copy right after the forward pass.
      save([x, chunkTargets]);
      const value = tf.tidy(() => {
        const logits = chunkLogits(x as tf.Tensor2D);
        const lse = tf.logSumExp(logits, 1);
        const picked = tf.sum(tf.mul(logits, oneHotFloat(chunkTargets, vocab)), 1);
        if (options.withEntropy) {
          // H = logsumexp − Σ p·logit
          const p = tf.exp(tf.sub(logits, lse.expandDims(1)));
          entropyParts.push(tf.keep(tf.sub(lse, tf.sum(tf.mul(p, logits), 1))) as tf.Tensor1D);
        }
        return tf.sub(picked, lse);
      });
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() => {
            const logits = chunkLogits(saved[0] as tf.Tensor2D);
            const probs = tf.softmax(logits, 1);
            const oneHot = oneHotFloat(saved[1] as tf.Tensor1D, vocab);
            let dLogits = tf.mul(tf.sub(oneHot, probs), dy.reshape([size, 1]));
            if (temperature !== 1) dLogits = tf.div(dLogits, temperature);
            return tf.matMul(dLogits, unembedding);
          }),
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    logprobParts.push(op(rows) as tf.Tensor1D);
    chunkTargets.dispose();
  }
  const logprobs = logprobParts.length === 1 ? logprobParts[0] : (tf.concat(logprobParts) as tf.Tensor1D);
  const entropy = options.withEntropy
    ? entropyParts.length === 1
      ? entropyParts[0]
      : (tf.concat(entropyParts) as tf.Tensor1D)
    : undefined;
  if (logprobParts.length > 1) logprobParts.forEach((t) => t.dispose());
  if (entropyParts.length > 1) entropyParts.forEach((t) => t.dispose());
  return { logprobs, entropy };
}

/** One-hot rows as float32 (tfjs-backend-wasm's float32 OneHot writes integer bit patterns, so cast). */
function oneHotFloat(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(indices, depth).toFloat() as tf.Tensor2D);
}
