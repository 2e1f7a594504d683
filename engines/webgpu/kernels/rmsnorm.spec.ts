import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, random, randomArray, readValues, relativeError, testGpu, poisoned } from '../testing.js';
import { RmsNorm, type RmsNormShape } from './rmsnorm.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

function reference(s: RmsNormShape, x: Float64Array, w: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < s.rows; r++) {
    let ss = 0;
    for (let d = 0; d < s.dim; d++) ss += x[r * s.dim + d] ** 2;
    const rstd = 1 / Math.sqrt(ss / s.dim + s.eps);
    for (let d = 0; d < s.dim; d++) y[r * s.dim + d] = w[d] * x[r * s.dim + d] * rstd;
  }
  return y;
}

describe.skipIf(!gpu)('rmsnorm kernels against float64', () => {
  // 200 is not a multiple of the 128 threads a row; 3 is smaller than them.
  for (const shape of [{ rows: 5, dim: 200, eps: 1e-5 }, { rows: 3, dim: 3, eps: 1e-6 }]) {
    it(`forward and backward, ${shape.rows}×${shape.dim}`, async () => {
      const ctx = gpu!;
      const seed = Date.now() >>> 0;
      const rnd = random(seed);
      const n = shape.rows * shape.dim;
      const x = Float64Array.from(Float32Array.from(randomArray(n, rnd, 2)));
      const w = Float64Array.from(Float32Array.from(randomArray(shape.dim, rnd)));
      const dy = Float64Array.from(Float32Array.from(randomArray(n, rnd)));
      const dw0 = Float64Array.from(Float32Array.from(randomArray(shape.dim, rnd)));
      const norm = await RmsNorm.create(ctx, shape);
      const [bx, bw, bdy] = [x, w, dy].map((a) => ctx.upload(Float32Array.from(a)));
      const by = poisoned(ctx, n, 'f32');
      const brstd = poisoned(ctx, shape.rows, 'f32');
      const bdx = poisoned(ctx, n, 'f32');
      const bdw = ctx.upload(Float32Array.from(dw0));
      ctx.submit([norm.forward(bx, bw, by, brstd), norm.backward(bdy, bx, bw, brstd, bdx), norm.weightGrad(bdy, bx, brstd, bdw)]);
      const y = await readValues(ctx, by, n, 'f32');
      const dx = await readValues(ctx, bdx, n, 'f32');
      const dw = await readValues(ctx, bdw, shape.dim, 'f32');
      const msg = `seed ${seed}`;
      expect(relativeError(y, reference(shape, x, w)), msg).toBeLessThan(1e-6);
      expect(relativeError(dx, numericVjp((v) => reference(shape, v, w), x, dy)), msg).toBeLessThan(1e-5);
      const dwRef = numericVjp((v) => reference(shape, x, v), w, dy).map((g, d) => g + dw0[d]);
      expect(relativeError(dw, dwRef), msg).toBeLessThan(1e-5);
    });
  }
});
