import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { SwiGlu } from './swiglu.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

const silu = (v: number) => v / (1 + Math.exp(-v));

describe.skipIf(!gpu)('swiglu kernels against float64', () => {
  it('forward and backward (size not a multiple of the workgroup)', async () => {
    const ctx = gpu!;
    const n = 301;
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const [g, u, dh] = [4, 2, 1].map((scale) => Float64Array.from(Float32Array.from(randomArray(n, rnd, scale))));
    const op = await SwiGlu.create(ctx, n);
    const [bg, bu, bdh] = [g, u, dh].map((a) => ctx.upload(Float32Array.from(a)));
    const [bh, bdg, bdu] = [0, 1, 2].map(() => poisoned(ctx, n, 'f32'));
    ctx.submit([op.forward(bg, bu, bh), op.backward(bdh, bg, bu, bdg, bdu)]);
    const forward = (gv: Float64Array, uv: Float64Array) => gv.map((v, i) => silu(v) * uv[i]);
    const msg = `seed ${seed}`;
    expect(relativeError(await readValues(ctx, bh, n, 'f32'), forward(g, u)), msg).toBeLessThan(1e-6);
    expect(relativeError(await readValues(ctx, bdg, n, 'f32'), numericVjp((v) => forward(v, u), g, dh)), msg).toBeLessThan(1e-5);
    expect(relativeError(await readValues(ctx, bdu, n, 'f32'), numericVjp((v) => forward(g, v), u, dh)), msg).toBeLessThan(1e-5);
  });
});
