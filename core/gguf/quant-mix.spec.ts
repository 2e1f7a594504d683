import { describe, expect, it } from 'vitest';
import { GgmlType } from './format.js';
import { tensorType, useMoreBits } from './quant-mix.js';

const model = { numLayers: 32, tiedOutput: false };
const matrix = (name: string, columns: number, layer?: number) => ({ name, shape: [columns * 2, columns], layer });

describe("llama.cpp's tensor type mix", () => {
  it('q4_k_m: q6_K for attn_v and ffn_down in the first and last eighth and every third layer between, q4_K elsewhere', () => {
    const sixBit = [...Array(32).keys()].filter((l) => useMoreBits(l, 32));
    expect(sixBit).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    for (let l = 0; l < 32; l++) {
      const expected = sixBit.includes(l) ? GgmlType.Q6_K : GgmlType.Q4_K;
      expect(tensorType('q4_k_m', matrix(`blk.${l}.attn_v.weight`, 4096, l), model)).toBe(expected);
      expect(tensorType('q4_k_m', matrix(`blk.${l}.ffn_down.weight`, 14336, l), model)).toBe(expected);
      expect(tensorType('q4_k_m', matrix(`blk.${l}.attn_q.weight`, 4096, l), model)).toBe(GgmlType.Q4_K);
    }
  });

  it('the output matrix gets q6_K (the embedding too when it is the output); vectors stay f32', () => {
    expect(tensorType('q4_k_m', matrix('output.weight', 4096), model)).toBe(GgmlType.Q6_K);
    expect(tensorType('q4_k_m', matrix('token_embd.weight', 4096), model)).toBe(GgmlType.Q4_K);
    expect(tensorType('q4_k_m', matrix('token_embd.weight', 4096), { ...model, tiedOutput: true })).toBe(GgmlType.Q6_K);
    expect(tensorType('q4_0', matrix('output.weight', 4096), model)).toBe(GgmlType.Q6_K);
    expect(tensorType('q8_0', matrix('output.weight', 4096), model)).toBe(GgmlType.Q8_0);
    expect(tensorType('q4_k_m', { name: 'blk.0.attn_norm.weight', shape: [4096] }, model)).toBe(GgmlType.F32);
    expect(tensorType('f16', { name: 'blk.0.attn_q.bias', shape: [4096] }, model)).toBe(GgmlType.F32);
    expect(tensorType('bf16', matrix('blk.0.attn_q.weight', 4096, 0), model)).toBe(GgmlType.BF16);
  });

  it('rows that are not whole blocks fall back as llama.cpp does: q4_K → q5_0, q6_K → q8_0, else f16', () => {
    expect(tensorType('q4_k_m', matrix('blk.5.attn_q.weight', 576, 5), model)).toBe(GgmlType.Q5_0);
    expect(tensorType('q4_k_m', matrix('blk.0.ffn_down.weight', 1536 + 32, 0), model)).toBe(GgmlType.Q8_0);
    expect(tensorType('q4_k_m', matrix('output.weight', 576), model)).toBe(GgmlType.Q8_0);
    expect(tensorType('q4_k_m', matrix('blk.5.attn_q.weight', 100, 5), model)).toBe(GgmlType.F16);
    expect(tensorType('q8_0', matrix('blk.5.attn_q.weight', 100, 5), model)).toBe(GgmlType.F16);
  });
});
