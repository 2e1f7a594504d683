// Random Llama-family checkpoints in the Hugging Face layout, for checks that need no reference outputs
// (the llama-tiny fixture's tokenizer is copied in, so vocab_size must be at least 1006).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig } from '../../core/llm/config.js';
import { writeSafetensors, type HostTensor } from '../../core/llm/safetensors.js';
import { Rng } from '../../core/rng.js';

export const LLAMA_TINY = 'test/fixtures/llama-tiny';

/** Uniform weights of the given scale, biases around 0 and norm weights around 1 (so neither hides a bug). */
export function randomCheckpoint(raw: Record<string, unknown>, seed: number): Record<string, HostTensor> {
  const config = parseModelConfig(raw);
  const rng = new Rng(seed);
  const tensor = (shape: number[], scale: number, offset = 0): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = offset + scale * (2 * rng.next() - 1);
    return { shape, data };
  };
  const h = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const out: Record<string, HostTensor> = {
    'model.embed_tokens.weight': tensor([config.vocabSize, h], 1),
    'model.norm.weight': tensor([h], 0.1, 1),
  };
  if (!config.tieWordEmbeddings) out['lm_head.weight'] = tensor([config.vocabSize, h], 0.3);
  const shapes: Record<string, [number, number]> = {
    'self_attn.q_proj': [q, h], 'self_attn.k_proj': [kv, h], 'self_attn.v_proj': [kv, h], 'self_attn.o_proj': [h, q],
    'mlp.gate_proj': [config.intermediateSize, h], 'mlp.up_proj': [config.intermediateSize, h], 'mlp.down_proj': [h, config.intermediateSize],
  };
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    out[`${p}.input_layernorm.weight`] = tensor([h], 0.1, 1);
    out[`${p}.post_attention_layernorm.weight`] = tensor([h], 0.1, 1);
    for (const [name, shape] of Object.entries(shapes)) {
      out[`${p}.${name}.weight`] = tensor(shape, name.includes('v_proj') || name.includes('mlp') ? 0.1 : 0.2);
      const biased = name.startsWith('self_attn') && (name.endsWith('o_proj') ? config.outputBias : config.attentionBias);
      if (biased) out[`${p}.${name}.bias`] = tensor([shape[0]], 0.1);
    }
    if (config.qkNorm) {
      out[`${p}.self_attn.q_norm.weight`] = tensor([config.headDim], 0.1, 1);
      out[`${p}.self_attn.k_norm.weight`] = tensor([config.headDim], 0.1, 1);
    }
  }
  return out;
}

export function writeCheckpoint(dir: string, raw: Record<string, unknown>, weights: Record<string, HostTensor>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(LLAMA_TINY, f), join(dir, f));
  writeSafetensors(join(dir, 'model.safetensors'), weights);
}
