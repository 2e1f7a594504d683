// A tiny bigram "language model" with the PolicyModel interface, for testing the train step without
// the real model: hidden = (E0 + dE)[token], logits = hidden · (W0 + dW). E0/W0 are frozen base
// weights (constants); dE/dW play the adapter (trainable, zero-initialised, disabled on request).
import { tf } from '../../engines/tfjs/tf.js';
import { Rng } from '../../core/rng.js';
import type { PolicyModel } from '../../engines/tfjs/grpo/train-step.js';

export class FakePolicy implements PolicyModel {
  readonly baseEmbedding: tf.Tensor2D;
  readonly baseOutput: tf.Tensor2D;
  readonly deltaEmbedding: tf.Variable<tf.Rank.R2>;
  readonly deltaOutput: tf.Variable<tf.Rank.R2>;
  private adaptersEnabled = true;

  constructor(
    readonly vocabSize: number,
    readonly hiddenSize: number,
    seed: number,
  ) {
    const rng = new Rng(seed);
    const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => rng.normal() * scale);
    this.baseEmbedding = tf.tensor2d(random(vocabSize * hiddenSize, 1), [vocabSize, hiddenSize]);
    this.baseOutput = tf.tensor2d(random(hiddenSize * vocabSize, 0.3), [hiddenSize, vocabSize]);
    const id = `${seed}-${Math.floor(Math.random() * 1e9)}`;
    this.deltaEmbedding = tf.variable(tf.zeros([vocabSize, hiddenSize]), true, `dE-${id}`);
    this.deltaOutput = tf.variable(tf.zeros([hiddenSize, vocabSize]), true, `dW-${id}`);
  }

  private embedding(): tf.Tensor2D {
    return this.adaptersEnabled ? tf.add(this.baseEmbedding, this.deltaEmbedding) : this.baseEmbedding;
  }
  private output(): tf.Tensor2D {
    return this.adaptersEnabled ? tf.add(this.baseOutput, this.deltaOutput) : this.baseOutput;
  }

  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    const [b, t] = ids.shape;
    return tf.gather(this.embedding(), ids.reshape([b * t]).toInt()).reshape([b, t, this.hiddenSize]);
  }

  tokenLogprobs(hidden: tf.Tensor3D, targets: tf.Tensor2D, options: { withEntropy?: boolean; temperature?: number } = {}) {
    const [b, t, h] = hidden.shape;
    const logits = tf.div(tf.matMul(hidden.reshape([b * t, h]), this.output()), options.temperature ?? 1);
    const logp = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets.reshape([b * t]).toInt(), this.vocabSize)), 1);
    const entropy = options.withEntropy ? tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)).reshape([b, t]) : undefined;
    return { logprobs: picked.reshape([b, t]) as tf.Tensor2D, entropy: entropy as tf.Tensor2D | undefined };
  }

  trainableVariables(): tf.Variable[] {
    return [this.deltaEmbedding, this.deltaOutput];
  }

  withAdaptersDisabled<T>(fn: () => T): T {
    this.adaptersEnabled = false;
    try {
      return fn();
    } finally {
      this.adaptersEnabled = true;
    }
  }

  /** Next-token log-probabilities for every previous token, [V][V], under the current (adapted) policy. */
  bigramLogprobs(): number[][] {
    return tf.tidy(() => tf.logSoftmax(tf.matMul(this.embedding(), this.output())).arraySync() as number[][]);
  }

  dispose(): void {
    tf.dispose([this.baseEmbedding, this.baseOutput, this.deltaEmbedding, this.deltaOutput]);
  }
}

/** Samples `length` tokens after `promptIds` from the bigram table, returning ids and their log-probs. */
export function sampleBigram(table: number[][], promptIds: number[], length: number, rng: Rng): { ids: number[]; logprobs: number[] } {
  const ids: number[] = [];
  const logprobs: number[] = [];
  let previous = promptIds[promptIds.length - 1];
  for (let i = 0; i < length; i++) {
    const row = table[previous];
    let u = rng.next();
    let token = row.length - 1;
    for (let v = 0; v < row.length; v++) {
      u -= Math.exp(row[v]);
      if (u < 0) {
        token = v;
        break;
      }
    }
    ids.push(token);
    logprobs.push(row[token]);
    previous = token;
  }
  return { ids, logprobs };
}
