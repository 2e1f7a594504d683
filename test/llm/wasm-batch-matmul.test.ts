// The SIMD batched product on wasm against a plain triple loop, over shapes that exercise every block and
// tail path of the kernel (4×8 and 4×4 blocks, single rows, single columns, k = 1, empty batches).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { SIMD_BATCH_MATMUL, batchMatMul, registerSimdBatchMatMul } from '../../engines/tfjs/wasm-batch-matmul.js';
import { matMul } from '../../engines/tfjs/matmul.js';
import { maxAbsDiff } from './fixture.js';

function reference(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[(t * m + i) * k + p] * b[(t * k + p) * n + j];
        c[(t * m + i) * n + j] = s;
      }
  return c;
}

describe('SIMD batched matmul (wasm)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('is registered by the wasm backend', async () => {
    expect(await registerSimdBatchMatMul()).toBe(true);
    expect(tf.getKernel(SIMD_BATCH_MATMUL, 'wasm')).toBeDefined();
  });

  it('equals a plain triple loop on every block and tail shape', () => {
    const shapes: [number[], number, number, number][] = [
      [[3], 5, 7, 9], [[2], 4, 1, 8], [[1], 13, 17, 3], [[2], 8, 5, 16], [[4], 4, 3, 12], [[1], 1, 6, 1],
      [[2, 3], 9, 11, 21], [[64, 2], 2, 32, 37], [[0], 3, 4, 5],
    ];
    for (const [batchShape, m, k, n] of shapes) {
      tf.tidy(() => {
        const a = tf.randomNormal([...batchShape, m, k], 0, 1, 'float32', m * 31 + k);
        const b = tf.randomNormal([...batchShape, k, n], 0, 1, 'float32', n * 17 + k);
        const c = batchMatMul(a, b);
        expect(c.shape).toEqual([...batchShape, m, n]);
        const batch = batchShape.reduce((x, y) => x * y, 1);
        const want = reference(a.dataSync() as Float32Array, b.dataSync() as Float32Array, batch, m, k, n);
        expect(maxAbsDiff(c.dataSync(), want), `shape ${[...batchShape, m, k, n]}`).toBeLessThan(1e-4);
      });
    }
  });

  it('batched products run through the SIMD kernel, and matMul gradients come out of it too', async () => {
    const a = tf.randomNormal([3, 2, 6, 5], 0, 1, 'float32', 1);
    const b = tf.randomNormal([3, 2, 5, 10], 0, 1, 'float32', 2);
    const w = tf.randomNormal([3, 2, 6, 10], 0, 1, 'float32', 3);
    const { kernels } = await tf.profile(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul(x, y), w)))([a, b]));
    expect(kernels.filter((k) => k.name === SIMD_BATCH_MATMUL).length).toBe(3); // the product and both gradients
    expect(kernels.some((k) => k.name === 'BatchMatMul')).toBe(false);
    tf.dispose([a, b, w]);
  });
});
