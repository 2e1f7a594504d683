// How a Hugging Face Llama-family checkpoint (Llama 2/3, Mistral, Qwen2, Qwen3) maps onto llama.cpp's
// GGUF: architecture names, hyperparameter keys, tensor names, and the q/k row permutation. Follows
// llama.cpp's convert_hf_to_gguf.py (LlamaModel, Qwen2Model, Qwen3Model) as a reference.
import type { ModelConfig } from '../llm/config.js';
import type { ProjectionName } from '../llm/projections.js';
import { gguf, type GgufMetadataValue } from './writer.js';

interface GgufArchitecture {
  /** `general.architecture`. */
  name: string;
  /**
   * llama.cpp's `llama` graph rotates interleaved pairs (x0,x1), (x2,x3)…, while transformers' Llama
   * rotates the two halves of each head: the converter reorders q and k rows to match. Qwen2/3 use
   * llama.cpp's NeoX rotation (halves), so their rows stay as they are.
   */
  permuteQK: boolean;
}

const ARCHITECTURES: Record<string, GgufArchitecture> = {
  LlamaForCausalLM: { name: 'llama', permuteQK: true },
  MistralForCausalLM: { name: 'llama', permuteQK: true },
  Qwen2ForCausalLM: { name: 'qwen2', permuteQK: false },
  Qwen3ForCausalLM: { name: 'qwen3', permuteQK: false },
};

export function ggufArchitecture(config: ModelConfig): GgufArchitecture {
  const arch = ARCHITECTURES[config.architecture];
  if (!arch) throw new Error(`GGUF export does not support ${config.architecture} (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  return arch;
}

/** `{arch}.*` hyperparameters, as llama.cpp reads them. */
export function hyperparameterMetadata(config: ModelConfig): Map<string, GgufMetadataValue> {
  const arch = ggufArchitecture(config).name;
  const out = new Map<string, GgufMetadataValue>([
    [`${arch}.vocab_size`, gguf.u32(config.vocabSize)],
    [`${arch}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${arch}.block_count`, gguf.u32(config.numLayers)],
    [`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(config.numKvHeads)],
    [`${arch}.attention.key_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.value_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${arch}.rope.dimension_count`, gguf.u32(config.headDim)],
  ]);
  // llama3 scaling travels as the `rope_freqs.weight` tensor (llama3RopeFactors), linear as two keys.
  if (config.ropeScaling?.type === 'linear') {
    out.set(`${arch}.rope.scaling.type`, gguf.string('linear'));
    out.set(`${arch}.rope.scaling.factor`, gguf.f32(config.ropeScaling.factor));
  }
  return out;
}

/**
 * Llama 3.1's rope scaling as the per-frequency divisors llama.cpp applies (`rope_freqs.weight`,
 * head_dim/2 values): 1 for short wavelengths, `factor` for long ones, a smooth blend between.
 */
export function llama3RopeFactors(config: ModelConfig): Float32Array | undefined {
  const s = config.ropeScaling;
  if (s?.type !== 'llama3') return undefined;
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  const oldContext = s.originalMaxPositionEmbeddings!;
  const lowFreqWavelength = oldContext / s.lowFreqFactor!;
  const highFreqWavelength = oldContext / s.highFreqFactor!;
  for (let i = 0; i < half; i++) {
    const frequency = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < highFreqWavelength) out[i] = 1;
    else if (wavelength > lowFreqWavelength) out[i] = s.factor;
    else {
      const smooth = (oldContext / wavelength - s.lowFreqFactor!) / (s.highFreqFactor! - s.lowFreqFactor!);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
};

/** GGUF's name for each projection (`blk.N.<name>.weight`). */
export const GGUF_PROJECTION: Record<ProjectionName, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

export interface MappedTensor {
  name: string;
  layer?: number;
  projection?: ProjectionName;
}

/** GGUF's name for a checkpoint tensor; undefined for tensors llama.cpp recomputes (rotary inv_freq). */
export function ggufTensorName(hfName: string): MappedTensor | undefined {
  if (hfName === 'model.embed_tokens.weight') return { name: 'token_embd.weight' };
  if (hfName === 'model.norm.weight') return { name: 'output_norm.weight' };
  if (hfName === 'lm_head.weight') return { name: 'output.weight' };
  if (hfName.endsWith('rotary_emb.inv_freq')) return undefined;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (m) {
    const layer = Number(m[1]);
    const rest = m[2];
    if (LAYER_TENSORS[rest]) return { name: `blk.${layer}.${LAYER_TENSORS[rest]}`, layer };
    const p = /^(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.(weight|bias)$/.exec(rest);
    if (p) {
      const projection = p[1] as ProjectionName;
      return { name: `blk.${layer}.${GGUF_PROJECTION[projection]}.${p[2]}`, layer, projection };
    }
  }
  throw new Error(`checkpoint tensor "${hfName}" has no GGUF counterpart (not a Llama-family decoder tensor)`);
}

/**
 * Reorder the rows of a q or k projection (weight [heads·headDim, in], bias, or LoRA B [heads·headDim, r])
 * from transformers' half-split rotary layout to llama.cpp's interleaved one: within each head, row
 * `2j + t` of the result is row `t·headDim/2 + j` of the input.
 */
export function permuteRotaryRows(data: Float32Array, rows: number, heads: number): Float32Array {
  const columns = data.length / rows;
  const headDim = rows / heads;
  if (!Number.isInteger(columns) || !Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new Error(`cannot permute ${rows} rows of ${data.length} values into ${heads} heads with an even head dimension`);
  }
  const out = new Float32Array(data.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * headDim + t * half + j) * columns;
        const to = (h * headDim + 2 * j + t) * columns;
        out.set(data.subarray(from, from + columns), to);
      }
    }
  }
  return out;
}

/** How many heads a projection's rows split into, if they need permuting (q: heads, k: KV heads). */
export function rotaryHeads(config: ModelConfig, projection: ProjectionName | undefined): number | undefined {
  if (!ggufArchitecture(config).permuteQK) return undefined;
  if (projection === 'q_proj') return config.numHeads;
  if (projection === 'k_proj') return config.numKvHeads;
  return undefined;
}
