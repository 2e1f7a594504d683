import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { Embedding } from './embedding.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

describe.skipIf(!gpu)('embedding gather and gradient', () => {
  it('gathers rows and scatter-adds gradients of repeated ids', async () => {
    const ctx = gpu!;
    const s = { tokens: 6, vocab: 9, hidden: 5 };
    const ids = [3, 0, 3, 8, 3, 1];
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const table = Float32Array.from(randomArray(s.vocab * s.hidden, rnd));
    const dout = Float32Array.from(randomArray(s.tokens * s.hidden, rnd));
    const dtable0 = Float32Array.from(randomArray(s.vocab * s.hidden, rnd));
    const op = await Embedding.create(ctx, s);
    const bids = ctx.upload(Uint32Array.from(ids));
    const out = poisoned(ctx, s.tokens * s.hidden, 'f32');
    const dtable = ctx.upload(dtable0);
    ctx.submit([op.gather(bids, ctx.upload(table), out), op.grad(bids, ctx.upload(dout), dtable)]);
    const expectedOut = ids.flatMap((id) => Array.from(table.subarray(id * s.hidden, (id + 1) * s.hidden)));
    expect(Array.from(await readValues(ctx, out, s.tokens * s.hidden, 'f32'))).toEqual(expectedOut);
    const expectedGrad = Float64Array.from(dtable0);
    ids.forEach((id, n) => {
      for (let d = 0; d < s.hidden; d++) expectedGrad[id * s.hidden + d] += dout[n * s.hidden + d];
    });
    expect(relativeError(await readValues(ctx, dtable, s.vocab * s.hidden, 'f32'), expectedGrad), `seed ${seed}`).toBeLessThan(1e-6);
  });
});
