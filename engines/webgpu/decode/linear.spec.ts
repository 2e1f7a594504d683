import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, random, randomArray, readValues, relativeError, testGpu, asType, poisoned } from '../testing.js';
import { Linear, type LinearShape } from './linear.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** y[r, n] = Σ_k x[r, k]·W[n, k] + bias[n] + scale·Σ_j u[r, off(n) + j]·B[n, j] in float64. */
function reference(s: LinearShape, x: Float64Array, w: Float64Array, bias?: Float64Array, lora?: { u: Float64Array; B: Float64Array; scale: number; off: (n: number) => number }): Float64Array {
  const { rows, inFeatures: K, outFeatures: N } = s;
  const y = new Float64Array(rows * N);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let acc = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) acc += x[r * K + k] * w[n * K + k];
      if (lora && s.lora) {
        let l = 0;
        for (let j = 0; j < s.lora.rank; j++) l += lora.u[r * s.lora.uWidth + lora.off(n) + j] * lora.B[n * s.lora.rank + j];
        acc += lora.scale * l;
      }
      y[r * N + n] = acc;
    }
  }
  return y;
}

describe.skipIf(!gpu)('decode linear (GEMV) against float64', () => {
  // 1006 outputs: not a multiple of the 4 a workgroup computes; 6 rows: not a multiple of 4; K 130: not of 64 pairs.
  for (const precision of ['f32', 'f16'] as const) {
    for (const epilogue of ['store', 'residual', 'swiglu'] as const) {
      it(`${precision} ${epilogue}, bias and LoRA`, async () => {
        const ctx = gpu!;
        const rnd = random(11);
        const rank = 3;
        const shape: LinearShape = {
          rows: 6,
          inFeatures: 130,
          outFeatures: epilogue === 'swiglu' ? 202 : 1006,
          precision,
          epilogue,
          bias: true,
          lora: epilogue === 'swiglu' ? { rank, uWidth: 2 * rank, interleaved: true } : { rank, uWidth: 2 * rank, segments: [{ end: 500, uOffset: 0 }, { end: 1006, uOffset: rank }] },
        };
        const off = (n: number) => (epilogue === 'swiglu' ? (n % 2) * rank : n < 500 ? 0 : rank);
        const { rows, inFeatures: K, outFeatures: N } = shape;
        const x = asType(randomArray(rows * K, rnd), 'f32');
        const w = asType(randomArray(N * K, rnd, 0.1), precision);
        const bias = asType(randomArray(N, rnd), 'f32');
        const u = asType(randomArray(rows * 2 * rank, rnd), 'f32');
        const B = asType(randomArray(N * rank, rnd), 'f32');
        const scale = 0.5;
        const y = reference(shape, x.exact, w.exact, bias.exact, { u: u.exact, B: B.exact, scale, off });
        const outWidth = epilogue === 'swiglu' ? N / 2 : N;
        const start = asType(randomArray(rows * outWidth, rnd), 'f32');
        let want: Float64Array;
        if (epilogue === 'store') want = y;
        else if (epilogue === 'residual') want = start.exact.map((v, i) => v + y[i]);
        else want = Float64Array.from({ length: rows * outWidth }, (_, i) => {
          const r = Math.floor(i / outWidth);
          const n = i % outWidth;
          const g = y[r * N + 2 * n];
          return (g / (1 + Math.exp(-g))) * y[r * N + 2 * n + 1];
        });
        const linear = await Linear.create(ctx, shape);
        const out = epilogue === 'residual' ? ctx.upload(start.data) : poisoned(ctx, rows * outWidth, 'f32');
        ctx.submit([linear.dispatch(ctx.upload(x.data), ctx.upload(w.data), out, { bias: ctx.upload(bias.data), lora: { u: ctx.upload(u.data), B: ctx.upload(B.data), scale: ctx.uniform([scale], [true]) } })]);
        const got = await readValues(ctx, out, rows * outWidth, 'f32');
        expect(relativeError(got, want)).toBeLessThan(1e-6);
      });
    }
  }
});
