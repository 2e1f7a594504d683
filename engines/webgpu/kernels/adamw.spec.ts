import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { AdamW } from './adamw.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** torch.nn.utils.clip_grad_norm_ then torch.optim.AdamW, step by step in float64. */
function reference(p: Float64Array, grads: Float64Array[], lr: number, o: { beta1: number; beta2: number; eps: number; weightDecay: number; maxGradNorm: number }) {
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const norms: number[] = [];
  grads.forEach((g, s) => {
    const t = s + 1;
    const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
    norms.push(norm);
    const clip = Math.min(1, o.maxGradNorm / (norm + 1e-6));
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] * clip;
      p[i] *= 1 - lr * o.weightDecay;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      p[i] -= (lr / (1 - o.beta1 ** t)) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - o.beta2 ** t) + o.eps));
    }
  });
  return { p, m, v, norms };
}

describe.skipIf(!gpu)('AdamW with global-norm clipping against float64', () => {
  for (const maxGradNorm of [0.5, Infinity]) {
    it(`three steps, ${Number.isFinite(maxGradNorm) ? `clipping at ${maxGradNorm}` : 'no clipping'}, over several workgroups`, async () => {
      const ctx = gpu!;
      const size = 700; // three workgroups of 256, the last partial
      const seed = Date.now() >>> 0;
      const rnd = random(seed);
      const p0 = Float64Array.from(Float32Array.from(randomArray(size, rnd)));
      const grads = [0, 1, 2].map(() => Float64Array.from(Float32Array.from(randomArray(size, rnd, 0.1))));
      const options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm };
      const opt = await AdamW.create(ctx, { size, ...options });
      const buffers = { params: ctx.upload(Float32Array.from(p0)), grads: ctx.upload(new Float32Array(size)), m: ctx.upload(new Float32Array(size)), v: ctx.upload(new Float32Array(size)), norm: ctx.upload(new Float32Array(1)) };
      const norms: number[] = [];
      for (const [s, g] of grads.entries()) {
        ctx.device.queue.writeBuffer(buffers.grads, 0, Float32Array.from(g));
        ctx.submit(opt.step(s + 1, 1e-2, buffers));
        norms.push((await readValues(ctx, buffers.norm, 1, 'f32'))[0]);
      }
      const ref = reference(Float64Array.from(p0), grads, 1e-2, options);
      const msg = `seed ${seed}`;
      expect(relativeError(norms, ref.norms), msg).toBeLessThan(1e-6);
      // Clipping must have acted in the clipped case (the gradients' norm is about 1.5).
      if (Number.isFinite(maxGradNorm)) expect(Math.min(...ref.norms)).toBeGreaterThan(maxGradNorm);
      expect(relativeError(await readValues(ctx, buffers.m, size, 'f32'), ref.m), msg).toBeLessThan(1e-6);
      expect(relativeError(await readValues(ctx, buffers.v, size, 'f32'), ref.v), msg).toBeLessThan(1e-5);
      const p = await readValues(ctx, buffers.params, size, 'f32');
      const moved = p0.map((x, i) => p[i] - x);
      const refMoved = ref.p.map((x, i) => x - p0[i]);
      expect(relativeError(moved, refMoved), msg).toBeLessThan(1e-4);
    });
  }
});
