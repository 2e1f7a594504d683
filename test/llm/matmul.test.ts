// The flag-free matrix products give tfjs's own values and gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { frozenMatMul, matMul, unembed } from '../../engines/tfjs/matmul.js';
import { maxAbsDiff } from './fixture.js';

describe('matmul helpers (wasm)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('matMul: values and both gradients equal tf.matMul, rank 2 and batched rank 4', () => {
    for (const [shapeA, shapeB] of [[[5, 7], [7, 3]], [[2, 3, 5, 7], [2, 3, 7, 4]]]) {
      tf.tidy(() => {
        const a = tf.randomNormal(shapeA, 0, 1, 'float32', 1);
        const b = tf.randomNormal(shapeB, 0, 1, 'float32', 2);
        const w = tf.randomNormal([...shapeA.slice(0, -1), shapeB[shapeB.length - 1]], 0, 1, 'float32', 3);
        const loss = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), w));
        expect(maxAbsDiff(matMul(a, b).dataSync(), tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D).dataSync())).toBeLessThan(1e-5);
        const ours = tf.grads(loss((x, y) => matMul(x, y)))([a, b]);
        const theirs = tf.grads(loss((x, y) => tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D)))([a, b]);
        ours.forEach((g, i) => expect(maxAbsDiff(g.dataSync(), theirs[i].dataSync())).toBeLessThan(1e-5));
      });
    }
  });

  it('frozenMatMul passes the input gradient; unembed equals h·Wᵀ', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([6, 4], 0, 1, 'float32', 4) as tf.Tensor2D;
      const wt = tf.randomNormal([4, 9], 0, 1, 'float32', 5) as tf.Tensor2D;
      const dy = tf.randomNormal([6, 9], 0, 1, 'float32', 6);
      const ours = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(frozenMatMul(v as tf.Tensor2D, wt), dy)))(x);
      const theirs = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.matMul(v as tf.Tensor2D, wt), dy)))(x);
      expect(maxAbsDiff(ours.dataSync(), theirs.dataSync())).toBeLessThan(1e-5);
      const w = tf.transpose(wt) as tf.Tensor2D;
      expect(maxAbsDiff(unembed(x, w).dataSync(), tf.matMul(x, wt).dataSync())).toBeLessThan(1e-5);
    });
  });
});
