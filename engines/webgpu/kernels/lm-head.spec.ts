import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { LmHeadLogSoftmax, type LmHeadShape } from './lm-head.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** [logp..., entropy...] from the full logits matrix in float64 (what the kernel must never build). */
function reference(s: LmHeadShape, h: Float64Array, w: Float64Array, target: number[]): Float64Array {
  const out = new Float64Array(2 * s.rows);
  for (let n = 0; n < s.rows; n++) {
    const logits = Array.from({ length: s.vocab }, (_, v) => {
      let dot = 0;
      for (let d = 0; d < s.hidden; d++) dot += h[n * s.hidden + d] * w[v * s.hidden + d];
      return dot * (s.scale ?? 1);
    });
    const max = Math.max(...logits);
    const lse = max + Math.log(logits.reduce((a, l) => a + Math.exp(l - max), 0));
    out[n] = logits[target[n]] - lse;
    out[s.rows + n] = -logits.reduce((a, l) => a + Math.exp(l - lse) * (l - lse), 0);
  }
  return out;
}

describe.skipIf(!gpu)('lm_head + selective log-softmax + entropy against float64', () => {
  // Vocabulary 300: two full 128-entry chunks and a partial one; hidden 130 > 128 threads.
  const shape: LmHeadShape = { rows: 3, hidden: 130, vocab: 300, scale: 1 / 0.7 };
  it('forward and backward (dh) with temperature 0.7', async () => {
    const ctx = gpu!;
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const h = Float64Array.from(Float32Array.from(randomArray(shape.rows * shape.hidden, rnd)));
    const w = Float64Array.from(Float32Array.from(randomArray(shape.vocab * shape.hidden, rnd, 0.5)));
    const target = [5, 299, 128];
    const up = Float64Array.from(Float32Array.from(randomArray(2 * shape.rows, rnd)));
    const op = await LmHeadLogSoftmax.create(ctx, shape);
    const [bh, bw] = [h, w].map((a) => ctx.upload(Float32Array.from(a)));
    const bt = ctx.upload(Uint32Array.from(target));
    const [bdlogp, bdent] = [ctx.upload(Float32Array.from(up.subarray(0, shape.rows))), ctx.upload(Float32Array.from(up.subarray(shape.rows)))];
    const [blogp, bent, bstats] = [shape.rows, shape.rows, 2 * shape.rows].map((n) => poisoned(ctx, n, 'f32'));
    const bdh = poisoned(ctx, shape.rows * shape.hidden, 'f32');
    ctx.submit([op.forward(bh, bw, bt, blogp, bent, bstats), op.backward(bh, bw, bt, bstats, bdlogp, bdent, bdh)]);
    const ref = reference(shape, h, w, target);
    const msg = `seed ${seed}`;
    const got = [...(await readValues(ctx, blogp, shape.rows, 'f32')), ...(await readValues(ctx, bent, shape.rows, 'f32'))];
    expect(relativeError(got, ref), msg).toBeLessThan(1e-5);
    expect(relativeError(await readValues(ctx, bdh, shape.rows * shape.hidden, 'f32'), numericVjp((x) => reference(shape, x, w, target), h, up)), msg).toBeLessThan(1e-5);
  });
});
