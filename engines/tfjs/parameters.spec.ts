import { describe, expect, it } from 'vitest';
import { parseModelConfig, readModelConfig } from '../../core/llm/config.js';
import { readSafetensorsHeader } from '../../core/llm/safetensors.js';
import { parameterSpecs } from './parameters.js';

const common = {
  vocab_size: 97, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  intermediate_size: 48, rms_norm_eps: 1e-6, max_position_embeddings: 256, rope_theta: 10000, eos_token_id: 2,
};

describe('the named-parameter list', () => {
  it("names every tensor of a transformers checkpoint with its stored shape, and nothing else (llama-tiny)", () => {
    const dir = 'test/fixtures/llama-tiny';
    const header = readSafetensorsHeader(`${dir}/model.safetensors`);
    const specs = parameterSpecs(readModelConfig(dir));
    expect(Object.fromEntries(specs.map((s) => [s.name, s.shape]))).toEqual(
      Object.fromEntries(Object.entries(header).filter(([name]) => name !== '__metadata__').map(([name, t]) => [name, t.shape])),
    );
    expect(specs.filter((s) => s.transposed).every((s) => s.name.endsWith('_proj.weight'))).toBe(true);
  });

  it("follows each family's differences: Qwen2's q/k/v biases, Qwen3's q/k norms, a tied head listed once", () => {
    const names = (raw: Record<string, unknown>) => parameterSpecs(parseModelConfig(raw)).map((s) => s.name);
    const qwen2 = names({ ...common, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', tie_word_embeddings: true });
    expect(qwen2.filter((n) => n.startsWith('model.layers.0.') && n.endsWith('.bias'))).toEqual(['q_proj', 'k_proj', 'v_proj'].map((p) => `model.layers.0.self_attn.${p}.bias`));
    expect(qwen2).not.toContain('lm_head.weight');
    const qwen3 = names({ ...common, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 24, tie_word_embeddings: false });
    expect(qwen3).toEqual(expect.arrayContaining(['lm_head.weight', 'model.layers.1.self_attn.q_norm.weight', 'model.layers.1.self_attn.k_norm.weight']));
    expect(new Set(qwen3).size).toBe(qwen3.length);
  });
});
