import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { Attention, type AttentionShape } from './attention.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** softmax((q·kᵀ)/√D + mask)·v in float64 with an explicit score matrix; rows with no key output 0. */
function reference(s: AttentionShape, q: Float64Array, k: Float64Array, v: Float64Array, valid: number[]): Float64Array {
  const { batch: B, tokens: T, queryHeads: HQ, kvHeads: HKV, headDim: D } = s;
  const o = new Float64Array(B * T * HQ * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < HQ; h++) {
      const kh = Math.floor(h / (HQ / HKV));
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j < T; j++) {
          if (j > i || !valid[b * T + j]) continue;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((b * T + i) * HQ + h) * D + d] * k[((b * T + j) * HKV + kh) * D + d];
          scores.push(j, dot / Math.sqrt(D));
        }
        if (!scores.length) continue;
        let max = -Infinity;
        for (let n = 1; n < scores.length; n += 2) max = Math.max(max, scores[n]);
        let sum = 0;
        for (let n = 1; n < scores.length; n += 2) sum += Math.exp(scores[n] - max);
        for (let n = 0; n < scores.length; n += 2) {
          const p = Math.exp(scores[n + 1] - max) / sum;
          for (let d = 0; d < D; d++) o[((b * T + i) * HQ + h) * D + d] += p * v[((b * T + scores[n]) * HKV + kh) * D + d];
        }
      }
    }
  }
  return o;
}

describe.skipIf(!gpu)('flash-style attention kernels against float64', () => {
  it('causal + left padding + GQA (4 query heads on 2 key/value heads): forward and backward', async () => {
    const ctx = gpu!;
    const s: AttentionShape = { batch: 2, tokens: 5, queryHeads: 4, kvHeads: 2, headDim: 8 };
    // Sequence 0 is left-padded by two (its first two queries see no key); sequence 1 has none.
    const valid = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const nq = s.batch * s.tokens * s.queryHeads * s.headDim;
    const nkv = s.batch * s.tokens * s.kvHeads * s.headDim;
    const [q, k, v] = [nq, nkv, nkv].map((n) => Float64Array.from(Float32Array.from(randomArray(n, rnd, 2))));
    const dO = Float64Array.from(Float32Array.from(randomArray(nq, rnd)));
    const op = await Attention.create(ctx, s);
    const [bq, bk, bv, bdO] = [q, k, v, dO].map((a) => ctx.upload(Float32Array.from(a)));
    const bvalid = ctx.upload(Uint32Array.from(valid));
    const rows = s.batch * s.queryHeads * s.tokens;
    const [bo, blse, bdelta, bdq] = [nq, rows, rows, nq].map((n) => poisoned(ctx, n, 'f32'));
    const [bdk, bdv] = [poisoned(ctx, nkv, 'f32'), poisoned(ctx, nkv, 'f32')];
    ctx.submit([
      op.forward(bq, bk, bv, bvalid, bo, blse),
      ...op.backward({ q: bq, k: bk, v: bv, valid: bvalid, o: bo, lse: blse, dO: bdO, delta: bdelta, dq: bdq, dk: bdk, dv: bdv }),
    ]);
    const msg = `seed ${seed}`;
    const ref = reference(s, q, k, v, valid);
    const o = await readValues(ctx, bo, nq, 'f32');
    expect(relativeError(o, ref), msg).toBeLessThan(1e-6);
    // The padded rows are exactly zero, not merely small.
    for (let i = 0; i < 2; i++) for (let x = 0; x < s.queryHeads * s.headDim; x++) expect(o[i * s.queryHeads * s.headDim + x]).toBe(0);
    expect(relativeError(await readValues(ctx, bdq, nq, 'f32'), numericVjp((x) => reference(s, x, k, v, valid), q, dO)), msg).toBeLessThan(1e-5);
    expect(relativeError(await readValues(ctx, bdk, nkv, 'f32'), numericVjp((x) => reference(s, q, x, v, valid), k, dO)), msg).toBeLessThan(1e-5);
    expect(relativeError(await readValues(ctx, bdv, nkv, 'f32'), numericVjp((x) => reference(s, q, k, x, valid), v, dO)), msg).toBeLessThan(1e-5);
    // Padded keys get no gradient.
    const dk = await readValues(ctx, bdk, nkv, 'f32');
    for (let x = 0; x < 2 * s.kvHeads * s.headDim; x++) expect(dk[x]).toBe(0);
  });

  it('refuses query heads that are not a multiple of the key/value heads', async () => {
    await expect(Attention.create(gpu!, { batch: 1, tokens: 2, queryHeads: 3, kvHeads: 2, headDim: 4 })).rejects.toThrow(/not a multiple/);
  });
});
