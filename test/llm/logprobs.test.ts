// Chunked token log-probs: values, entropy and gradient equal a naive full-softmax computation.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { chunkedTokenLogprobs } from '../../engines/tfjs/logprobs.js';
import { maxAbsDiff } from './fixture.js';

const N = 13;
const H = 8;
const V = 29;

function naive(hidden: tf.Tensor2D, w: tf.Tensor2D, targets: tf.Tensor1D, temperature: number) {
  const logp = tf.logSoftmax(tf.div(tf.matMul(hidden, w, false, true), temperature));
  const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, V).toFloat()), 1);
  const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
  return { picked, entropy };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`chunkedTokenLogprobs on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    for (const chunkSize of [1, 4, 13, 100]) {
      for (const temperature of [1, 0.7]) {
        it(`chunk ${chunkSize}, temperature ${temperature}: values, entropy and gradients equal the full softmax`, () => {
          tf.tidy(() => {
            const hidden = tf.randomNormal([N, H], 0, 1, 'float32', 1) as tf.Tensor2D;
            const w = tf.randomNormal([V, H], 0, 1, 'float32', 2) as tf.Tensor2D;
            const targets = tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 7) % V), 'int32');
            const weights = tf.randomUniform([N], 0.5, 1.5, 'float32', 3); // dy ≠ 1 everywhere
            const ours = chunkedTokenLogprobs(hidden, w, targets, { chunkSize, withEntropy: true, temperature });
            const ref = naive(hidden, w, targets, temperature);
            expect(maxAbsDiff(ours.logprobs.dataSync(), ref.picked.dataSync())).toBeLessThan(1e-5);
            expect(maxAbsDiff(ours.entropy!.dataSync(), ref.entropy.dataSync())).toBeLessThan(1e-5);
            const gOurs = tf.grad((h: tf.Tensor) => tf.sum(tf.mul(chunkedTokenLogprobs(h as tf.Tensor2D, w, targets, { chunkSize, temperature }).logprobs, weights)))(hidden);
            const gRef = tf.grad((h: tf.Tensor) => tf.sum(tf.mul(naive(h as tf.Tensor2D, w, targets, temperature).picked, weights)))(hidden);
            expect(maxAbsDiff(gOurs.dataSync(), gRef.dataSync())).toBeLessThan(1e-5);
          });
        });
      }
    }

    it('leaves no tensors behind in a gradient pass', () => {
      const hidden = tf.randomNormal([N, H], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([V, H], 0, 1, 'float32', 2) as tf.Tensor2D;
      const targets = tf.tensor1d(Array.from({ length: N }, (_, i) => i % V), 'int32');
      const run = () => tf.tidy(() => tf.grad((h: tf.Tensor) => tf.sum(chunkedTokenLogprobs(h as tf.Tensor2D, w, targets, { chunkSize: 5, withEntropy: true }).logprobs))(hidden)).dispose();
      run();
      const before = tf.memory().numTensors;
      run();
      run();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([hidden, w, targets]);
    });
  });
}
