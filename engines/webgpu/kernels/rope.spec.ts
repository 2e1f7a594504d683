import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, numericVjp, poisoned, random, randomArray, readValues, relativeError, testGpu } from '../testing.js';
import { ropeInverseFrequencies } from '../../../core/llm/rope.js';
import { Rope, ropeTable, type RopeShape } from './rope.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** rotate_half RoPE in float64 straight from the definition; angles p·inv_freq, rounded to float32
 *  first when `roundAngle` (transformers computes the angle in float32). */
function reference(s: RopeShape, x: Float64Array, positions: number[], invFreq: Float32Array, roundAngle: boolean): Float64Array {
  const half = s.headDim / 2;
  const y = new Float64Array(x.length);
  for (let t = 0; t < s.tokens; t++) {
    for (let h = 0; h < s.heads; h++) {
      const row = (t * s.heads + h) * s.headDim;
      for (let i = 0; i < half; i++) {
        const angle = roundAngle ? Math.fround(positions[t] * invFreq[i]) : positions[t] * invFreq[i];
        const [c, sn] = [Math.cos(angle), Math.sin(angle)];
        y[row + i] = x[row + i] * c - x[row + i + half] * sn;
        y[row + i + half] = x[row + i + half] * c + x[row + i] * sn;
      }
    }
  }
  return y;
}

/** Llama-3.2's scaling (factor 32, low 1, high 4, original context 8192) and plain RoPE. */
const configs = {
  llama3: { headDim: 16, ropeTheta: 500000, ropeScaling: { type: 'llama3' as const, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } },
  plain: { headDim: 16, ropeTheta: 10000 },
};

describe.skipIf(!gpu)('rope kernels against float64', () => {
  for (const [name, config] of Object.entries(configs)) {
    it(`${name}: forward and backward at padded (repeated) and large positions`, async () => {
      const ctx = gpu!;
      const shape: RopeShape = { tokens: 6, heads: 3, headDim: config.headDim };
      const positions = [0, 0, 1, 2, 3000, 4095];
      const seed = Date.now() >>> 0;
      const rnd = random(seed);
      const n = shape.tokens * shape.heads * shape.headDim;
      const x = Float64Array.from(Float32Array.from(randomArray(n, rnd)));
      const dy = Float64Array.from(Float32Array.from(randomArray(n, rnd)));
      const table = ropeTable(config, 4096);
      const inv = ropeInverseFrequencies(config);
      const op = await Rope.create(ctx, shape);
      const bufs = [ctx.upload(Float32Array.from(x)), ctx.upload(Uint32Array.from(positions)), ctx.upload(table.cos), ctx.upload(table.sin), ctx.upload(Float32Array.from(dy))];
      const [by, bdx] = [poisoned(ctx, n, 'f32'), poisoned(ctx, n, 'f32')];
      ctx.submit([op.forward(bufs[0], bufs[1], bufs[2], bufs[3], by), op.backward(bufs[4], bufs[1], bufs[2], bufs[3], bdx)]);
      const msg = `seed ${seed}`;
      const refAngles = (xv: Float64Array) => reference(shape, xv, positions, inv, true);
      expect(relativeError(await readValues(ctx, by, n, 'f32'), refAngles(x)), msg).toBeLessThan(1e-6);
      expect(relativeError(await readValues(ctx, bdx, n, 'f32'), numericVjp(refAngles, x, dy)), msg).toBeLessThan(1e-5);
      // Against the unrounded definition: at angles up to 4095 rad the float32 angle (as in
      // transformers) moves cos/sin by up to ~2e-4.
      expect(relativeError(await readValues(ctx, by, n, 'f32'), reference(shape, x, positions, inv, false)), msg).toBeLessThan(1e-3);
    });
  }
});

describe('llama3 inverse frequencies the kernels are fed', () => {
  it("match transformers' _compute_llama3_parameters written out in float64", () => {
    const { headDim, ropeTheta, ropeScaling: s } = configs.llama3;
    const expected = Array.from({ length: headDim / 2 }, (_, i) => {
      const inv = 1 / ropeTheta ** ((2 * i) / headDim);
      const wavelen = (2 * Math.PI) / inv;
      const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      const scaled = wavelen > lowWavelen ? inv / s.factor : inv;
      if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return ((1 - smooth) * scaled) / s.factor + smooth * scaled;
    });
    const got = Array.from(ropeInverseFrequencies(configs.llama3));
    // All three bands occur at this head size: kept, interpolated, slowed.
    expect(got.some((v, i) => v === Math.fround(1 / ropeTheta ** ((2 * i) / headDim)))).toBe(true);
    expect(relativeError(got, expected)).toBeLessThan(1e-6);
  });
});
