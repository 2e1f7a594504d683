import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { LoraLinear, type LoraLinearShape } from './lora.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** y = x·Wᵀ + (alpha/r)·x·Aᵀ·Bᵀ in float64, as PEFT's Linear computes it. */
function reference(s: LoraLinearShape, x: Float64Array, w: Float64Array, a: Float64Array, b: Float64Array): Float64Array {
  const { tokens: N, inFeatures: I, outFeatures: O, rank: R } = s;
  const y = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    const u = Array.from({ length: R }, (_, j) => {
      let sum = 0;
      for (let i = 0; i < I; i++) sum += x[n * I + i] * a[j * I + i];
      return sum;
    });
    for (let o = 0; o < O; o++) {
      let base = 0;
      for (let i = 0; i < I; i++) base += x[n * I + i] * w[o * I + i];
      let adapter = 0;
      for (let j = 0; j < R; j++) adapter += u[j] * b[o * R + j];
      y[n * O + o] = base + (s.alpha / R) * adapter;
    }
  }
  return y;
}

describe.skipIf(!gpu)('LoRA linear (adapter fused into the base GEMM epilogue) against float64', () => {
  it('forward, dx, and accumulated dA, dB', async () => {
    const ctx = gpu!;
    const s: LoraLinearShape = { tokens: 7, inFeatures: 24, outFeatures: 20, rank: 4, alpha: 8 };
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const sized = (n: number, scale = 1) => Float64Array.from(Float32Array.from(randomArray(n, rnd, scale)));
    const [x, w, a, b, dy] = [sized(s.tokens * s.inFeatures), sized(s.outFeatures * s.inFeatures), sized(s.rank * s.inFeatures), sized(s.outFeatures * s.rank), sized(s.tokens * s.outFeatures)];
    const [dA0, dB0] = [sized(s.rank * s.inFeatures), sized(s.outFeatures * s.rank)];
    const op = await LoraLinear.create(ctx, s);
    const up = (v: Float64Array) => ctx.upload(Float32Array.from(v));
    const t = { x: up(x), w: up(w), a: up(a), b: up(b), u: poisoned(ctx, s.tokens * s.rank, 'f32') };
    const y = poisoned(ctx, s.tokens * s.outFeatures, 'f32');
    const g = { dy: up(dy), gu: poisoned(ctx, s.tokens * s.rank, 'f32'), dx: poisoned(ctx, s.tokens * s.inFeatures, 'f32'), dA: up(dA0), dB: up(dB0) };
    ctx.submit([...op.forward(t, y), ...op.backward(t, g)]);
    const msg = `seed ${seed}`;
    expect(relativeError(await readValues(ctx, y, s.tokens * s.outFeatures, 'f32'), reference(s, x, w, a, b)), msg).toBeLessThan(1e-6);
    expect(relativeError(await readValues(ctx, g.dx, x.length, 'f32'), numericVjp((v) => reference(s, v, w, a, b), x, dy)), msg).toBeLessThan(1e-5);
    const dA = numericVjp((v) => reference(s, x, w, v, b), a, dy).map((v, i) => v + dA0[i]);
    const dB = numericVjp((v) => reference(s, x, w, a, v), b, dy).map((v, i) => v + dB0[i]);
    expect(relativeError(await readValues(ctx, g.dA, a.length, 'f32'), dA), msg).toBeLessThan(1e-5);
    expect(relativeError(await readValues(ctx, g.dB, b.length, 'f32'), dB), msg).toBeLessThan(1e-5);
  });
});
