// config.json (transformers v4 and v5 layouts) → one typed ModelConfig.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveArchitecture } from './architectures/index.js';
import { readJsonFile } from '../runtime/json-file.js';

export interface RopeScaling {
  type: 'linear' | 'llama3';
  factor: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface ModelConfig {
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** q/k/v projections carry a bias. */
  attentionBias: boolean;
  /** o_proj carries a bias. */
  outputBias: boolean;
  mlpBias: boolean;
  qkNorm: boolean;
  /** Attention looks back at most this many tokens (Mistral's `sliding_window`); undefined = unlimited. */
  slidingWindow?: number;
  /** The checkpoint's stored dtype (`dtype` in v5, `torch_dtype` in v4); weights are computed in float32. */
  dtype: string;
  raw: Record<string, unknown>;
}

/** Normalise a parsed config.json (and optionally generation_config.json, whose eos ids win). */
export function parseModelConfig(
  raw: Record<string, unknown>,
  generationConfig?: Record<string, unknown>,
  where = 'config.json',
): ModelConfig {
  const { name, traits } = resolveArchitecture(raw, where);
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`);
    }
    return v;
  };
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw new Error(`${where}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`${where}: head dimension ${headDim} must be an even integer`);
  if (raw.hidden_act != null && raw.hidden_act !== 'silu') throw new Error(`${where}: hidden_act "${raw.hidden_act}" is not supported (only silu)`);

  // v5 keeps theta and scaling together in `rope_parameters`; v4 has `rope_theta` and `rope_scaling`.
  const ropeParameters = (raw.rope_parameters ?? null) as Record<string, unknown> | null;
  const ropeTheta = Number(ropeParameters?.rope_theta ?? raw.rope_theta ?? 10000);
  const ropeScaling = parseRopeScaling((raw.rope_scaling ?? ropeParameters ?? null) as Record<string, unknown> | null, where);
  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1) throw new Error(`${where}: partial_rotary_factor ${raw.partial_rotary_factor} is not supported`);

  const eosSource = generationConfig?.eos_token_id ?? raw.eos_token_id;
  const eosTokenIds = eosSource == null ? [] : (Array.isArray(eosSource) ? eosSource : [eosSource]).map(Number);
  const bos = generationConfig?.bos_token_id ?? raw.bos_token_id;
  const slidingWindow = parseSlidingWindow(raw, where);

  return {
    architecture: name,
    vocabSize: int('vocab_size'),
    hiddenSize,
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: int('intermediate_size'),
    rmsNormEps: Number(raw.rms_norm_eps ?? 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    maxPositionEmbeddings: Number(raw.max_position_embeddings ?? 2048),
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    eosTokenIds,
    attentionBias: traits.qkvBias(raw),
    outputBias: traits.outputBias(raw),
    mlpBias: traits.mlpBias(raw),
    qkNorm: traits.qkNorm,
    slidingWindow,
    dtype: String(raw.dtype ?? raw.torch_dtype ?? 'float32'),
    raw,
  };
}

/**
 * Mistral applies `sliding_window` to every layer. Qwen2/Qwen3 carry one too but use it only with
 * `use_sliding_window` (and then only in some layers), which is not supported.
 */
function parseSlidingWindow(raw: Record<string, unknown>, where: string): number | undefined {
  const window = raw.sliding_window;
  if (window == null) return undefined;
  if ('use_sliding_window' in raw) {
    if (raw.use_sliding_window !== true) return undefined;
    throw new Error(`${where}: use_sliding_window=true (per-layer sliding-window attention) is not supported`);
  }
  if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) {
    throw new Error(`${where}: "sliding_window" must be a positive integer or null, got ${JSON.stringify(window)}`);
  }
  return window;
}

function parseRopeScaling(s: Record<string, unknown> | null, where: string): RopeScaling | undefined {
  if (!s) return undefined;
  const type = String(s.rope_type ?? s.type ?? 'default');
  if (type === 'default') return undefined;
  const factor = Number(s.factor);
  if (!(factor > 0)) throw new Error(`${where}: rope scaling "${type}" needs a positive "factor"`);
  if (type === 'linear') return { type, factor };
  if (type === 'llama3') {
    const need = (k: string) => {
      const v = Number(s[k]);
      if (!(v > 0)) throw new Error(`${where}: llama3 rope scaling needs a positive "${k}"`);
      return v;
    };
    return {
      type,
      factor,
      lowFreqFactor: need('low_freq_factor'),
      highFreqFactor: need('high_freq_factor'),
      originalMaxPositionEmbeddings: need('original_max_position_embeddings'),
    };
  }
  throw new Error(`${where}: rope scaling type "${type}" is not supported (supported: default, linear, llama3)`);
}

/** Read `config.json` (+ `generation_config.json` if present) from a checkpoint folder. */
export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`${dir}: missing config.json`);
  const raw = readJsonFile(path) as Record<string, unknown>;
  const genPath = join(dir, 'generation_config.json');
  const gen = existsSync(genPath) ? (readJsonFile(genPath) as Record<string, unknown>) : undefined;
  return parseModelConfig(raw, gen, path);
}
