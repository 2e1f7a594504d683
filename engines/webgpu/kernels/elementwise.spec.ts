import { describe, expect, it } from 'vitest';
import { fromF16, toF16 } from '../f16.js';
import { NO_ADAPTER, poisoned, random, randomArray, readValues, testGpu } from '../testing.js';
import { AddBias, AddInto, CastF16, RowIndex } from './elementwise.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

describe.skipIf(!gpu)('element-wise kernels', () => {
  it('castF16 rounds to nearest half as the host does; addInto and addBias add', async () => {
    const ctx = gpu!;
    const seed = Date.now() >>> 0;
    const rnd = random(seed);
    const rows = 7;
    const cols = 38;
    const n = rows * cols;
    const x = Float32Array.from(randomArray(n, rnd, 3));
    const y0 = Float32Array.from(randomArray(n, rnd, 2));
    const bias = Float32Array.from(randomArray(cols, rnd));
    const [cast, add, addBias] = await Promise.all([CastF16.create(ctx, n), AddInto.create(ctx, n), AddBias.create(ctx, rows, cols)]);
    const half = poisoned(ctx, n, 'f16');
    const y = ctx.upload(y0);
    const yb = ctx.upload(y0);
    const bx = ctx.upload(x);
    ctx.submit([cast.dispatch(bx, half), add.dispatch(bx, y), addBias.dispatch(ctx.upload(bias), yb)]);
    expect(Array.from(await readValues(ctx, half, n, 'f16')), `seed ${seed}`).toEqual(Array.from(fromF16(toF16(x))));
    expect(Array.from(await readValues(ctx, y, n, 'f32'))).toEqual(Array.from(y0.map((v, i) => v + x[i])));
    expect(Array.from(await readValues(ctx, yb, n, 'f32'))).toEqual(Array.from(y0.map((v, i) => v + bias[i % cols])));
    await expect(CastF16.create(ctx, 5)).rejects.toThrow(/5 values \(must be even/);
  });

  it('gatherRows picks rows (0 for padding slots) and scatterRows adds them back', async () => {
    const ctx = gpu!;
    const shape = { rows: 5, picked: 4, width: 3 };
    const x = Float32Array.from({ length: 15 }, (_, i) => i + 1);
    const index = Uint32Array.from([4, 0, 5, 2]);
    const op = await RowIndex.create(ctx, shape);
    const picked = poisoned(ctx, 12, 'f32');
    const grad = ctx.upload(new Float32Array(15).fill(0.5));
    const bindex = ctx.upload(index);
    ctx.submit([op.gather(bindex, ctx.upload(x), picked), op.scatter(bindex, ctx.upload(Float32Array.from({ length: 12 }, (_, i) => 10 * i)), grad)]);
    expect(Array.from(await readValues(ctx, picked, 12, 'f32'))).toEqual([13, 14, 15, 1, 2, 3, 0, 0, 0, 7, 8, 9]);
    expect(Array.from(await readValues(ctx, grad, 15, 'f32'))).toEqual([30.5, 40.5, 50.5, 0.5, 0.5, 0.5, 90.5, 100.5, 110.5, 0.5, 0.5, 0.5, 0.5, 10.5, 20.5]);
  });
});
