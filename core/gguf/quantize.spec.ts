import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { GGML_BLOCK, GgmlType } from './format.js';
import { decodeTensor, encodeTensor } from './quantize.js';

function randomValues(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(count);
  // Gaussian-ish weights with a few outliers, as trained matrices have.
  for (let i = 0; i < count; i++) out[i] = (rng.next() + rng.next() + rng.next() - 1.5) * (i % 97 === 0 ? 6 : 1);
  return out;
}

const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
const rmsError = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0) / a.length);

describe('ggml block encoders', () => {
  it('write the block sizes ggml expects', () => {
    const values = randomValues(512, 1);
    for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
      const { size, bytes } = GGML_BLOCK[type];
      expect(encodeTensor(type, values).length).toBe((512 / size) * bytes);
    }
    expect(() => encodeTensor(GgmlType.Q4_K, randomValues(64, 1))).toThrow(/whole number of Q4_K blocks/);
  });

  it('q8_0 is within half a step of every value; f16 and bf16 round-trip what they can represent', () => {
    const values = randomValues(256, 2);
    const decoded = decodeTensor(GgmlType.Q8_0, encodeTensor(GgmlType.Q8_0, values), 256);
    for (let b = 0; b < 8; b++) {
      const block = values.subarray(32 * b, 32 * b + 32);
      const step = Math.max(...block.map(Math.abs)) / 127;
      for (let i = 0; i < 32; i++) expect(Math.abs(decoded[32 * b + i] - block[i])).toBeLessThanOrEqual(step * (0.5 + 127 * 2 ** -11)); // d is stored as f16
    }
    const representable = new Float32Array([0, 1, -2.5, 0.15625, 65504, -0.000061035156]);
    expect(decodeTensor(GgmlType.F16, encodeTensor(GgmlType.F16, representable), 6)).toEqual(representable);
    expect(decodeTensor(GgmlType.BF16, encodeTensor(GgmlType.BF16, representable.subarray(0, 4)), 4)).toEqual(representable.subarray(0, 4));
  });

  it('the 4-, 5- and 6-bit types keep the error to what their bits allow (relative rms error)', () => {
    const values = randomValues(256 * 16, 3);
    const relative = (type: GgmlType) => rmsError(decodeTensor(type, encodeTensor(type, values), values.length), values) / rms(values);
    const errors = { q4_0: relative(GgmlType.Q4_0), q5_0: relative(GgmlType.Q5_0), q4_K: relative(GgmlType.Q4_K), q6_K: relative(GgmlType.Q6_K), q8_0: relative(GgmlType.Q8_0) };
    expect(errors.q8_0).toBeLessThan(0.01);
    expect(errors.q6_K).toBeLessThan(0.03);
    expect(errors.q5_0).toBeLessThan(0.07);
    expect(errors.q4_K).toBeLessThan(0.12);
    expect(errors.q4_0).toBeLessThan(0.15);
    // More bits, less error; q4_K's fitted scale and min beat q4_0's max-based scale.
    expect(errors.q8_0).toBeLessThan(errors.q6_K);
    expect(errors.q6_K).toBeLessThan(errors.q5_0);
    expect(errors.q4_K).toBeLessThan(errors.q4_0);
  });

  it('an all-zero block encodes and decodes to zeros', () => {
    const zeros = new Float32Array(256);
    for (const type of [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
      expect(decodeTensor(type, encodeTensor(type, zeros), 256).every((x) => x === 0)).toBe(true);
    }
  });
});
