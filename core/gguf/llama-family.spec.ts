import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../llm/config.js';
import { ggufTensorName, hyperparameterMetadata, llama3RopeFactors, permuteRotaryRows, rotaryHeads } from './llama-family.js';

const llama31 = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8,
  vocab_size: 128256, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
});

describe('Llama-family mapping onto GGUF', () => {
  it("permutes q/k rows from transformers' half split to llama.cpp's interleaved pairs, head by head", () => {
    // 2 heads of dimension 4, one column: rows [h0: a0 a1 b0 b1 | h1: c0 c1 d0 d1] -> [a0 b0 a1 b1 | c0 d0 c1 d1].
    const rows = new Float32Array([0, 1, 2, 3, 10, 11, 12, 13]);
    expect([...permuteRotaryRows(rows, 8, 2)]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
    // Whole rows move: 2 columns.
    const wide = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    expect([...permuteRotaryRows(wide, 4, 1)]).toEqual([0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
    expect(rotaryHeads(llama31, 'q_proj')).toBe(32);
    expect(rotaryHeads(llama31, 'k_proj')).toBe(8);
    expect(rotaryHeads(llama31, 'v_proj')).toBeUndefined();
    const qwen = parseModelConfig({ architectures: ['Qwen2ForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 10 });
    expect(rotaryHeads(qwen, 'q_proj')).toBeUndefined(); // llama.cpp runs Qwen2 with NeoX (half-split) rotary
  });

  it("Llama 3.1's rope scaling becomes llama.cpp's per-frequency divisors (1 for short wavelengths, the factor for long)", () => {
    const factors = llama3RopeFactors(llama31)!;
    expect(factors).toHaveLength(64);
    expect(factors[0]).toBe(1);
    expect(factors[63]).toBeCloseTo(8, 6);
    // In between they rise monotonically (the smooth blend).
    for (let i = 1; i < 64; i++) expect(factors[i]).toBeGreaterThanOrEqual(factors[i - 1]);
    expect(llama3RopeFactors({ ...llama31, ropeScaling: undefined })).toBeUndefined();
    const meta = hyperparameterMetadata(llama31);
    expect(meta.get('llama.attention.head_count_kv')).toEqual({ type: 'uint32', value: 8 });
    expect(meta.get('llama.rope.freq_base')).toEqual({ type: 'float32', value: 500000 });
    expect(meta.has('llama.rope.scaling.type')).toBe(false);
  });

  it('names tensors as llama.cpp does, and refuses tensors it has no name for', () => {
    expect(ggufTensorName('model.layers.3.self_attn.o_proj.weight')).toEqual({ name: 'blk.3.attn_output.weight', layer: 3, projection: 'o_proj' });
    expect(ggufTensorName('model.layers.0.self_attn.q_proj.bias')).toEqual({ name: 'blk.0.attn_q.bias', layer: 0, projection: 'q_proj' });
    expect(ggufTensorName('model.layers.1.self_attn.k_norm.weight')).toEqual({ name: 'blk.1.attn_k_norm.weight', layer: 1 });
    expect(ggufTensorName('model.layers.1.post_attention_layernorm.weight')?.name).toBe('blk.1.ffn_norm.weight');
    expect(ggufTensorName('model.layers.0.self_attn.rotary_emb.inv_freq')).toBeUndefined();
    expect(() => ggufTensorName('model.vision_tower.patch_embed.weight')).toThrow(/no GGUF counterpart/);
  });
});
