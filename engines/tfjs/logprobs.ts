// Per-token log-probabilities of chosen tokens without materialising [N, V] logits at once: the
// positions are processed in chunks, and a custom gradient recomputes each chunk's softmax in the
// backward pass (d logp / d logits = onehot(target) − softmax), so only [chunk, V] exists at a time.
import { tf } from './tf.js';
import { unembed } from './matmul.js';

export interface TokenLogprobOptions {
  chunkSize?: number;
  withEntropy?: boolean;
  temperature?: number;
  /** Also differentiate with respect to the unembedding (full training); by default it is a constant. */
  trainUnembedding?: boolean;
}

/**
 * hidden [N, H] (differentiable), unembedding [V, H] (a constant unless `trainUnembedding`), targets [N] int32 →
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

  const chunkLogits = (rows: tf.Tensor2D, w: tf.Tensor2D) => {
    const logits = unembed(rows, w);
    return temperature === 1 ? logits : tf.div(logits, temperature);
  };

  const logprobParts: tf.Tensor1D[] = [];
  const entropyParts: tf.Tensor1D[] = [];
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const rows = tf.slice(hidden, [start, 0], [size, h]);
    const chunkTargets = tf.slice(targets, [start], [size]);
    // One customGrad body for both cases; the unembedding is a second differentiable input only when
    // it is trained (a zero gradient for a frozen [V, H] matrix would cost a vocabulary-sized buffer).
    const body = (x: tf.Tensor, w: tf.Tensor2D, save: tf.GradSaveFunc) => {
      // Save the targets too: the caller disposes its own copy right after the forward pass.
      save([x, chunkTargets, w]);
      const value = tf.tidy(() => {
        const logits = chunkLogits(x as tf.Tensor2D, w);
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
            const [xs, ts, ws] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
            const logits = chunkLogits(xs, ws);
            const probs = tf.softmax(logits, 1);
            const oneHot = oneHotFloat(ts, vocab);
            let dLogits = tf.mul(tf.sub(oneHot, probs), dy.reshape([size, 1])) as tf.Tensor2D;
            if (temperature !== 1) dLogits = tf.div(dLogits, temperature);
            const dHidden = tf.matMul(dLogits, ws);
            if (!options.trainUnembedding) return dHidden;
            // logits = x·Wᵀ, so dW = dLogitsᵀ·x [V, H]; the explicit transpose keeps wasm on its fast path.
            return [dHidden, tf.matMul(tf.transpose(dLogits), xs)];
          }),
      };
    };
    type Body = Parameters<typeof tf.customGrad>[0];
    const op = options.trainUnembedding
      ? tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => body(x, w as tf.Tensor2D, save)) as unknown as Body)
      : tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => body(x, unembedding, save)) as unknown as Body);
    const part = options.trainUnembedding ? op(rows, unembedding) : op(rows);
    logprobParts.push(part as tf.Tensor1D);
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
