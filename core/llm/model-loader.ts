// Building a CausalLM: from a checkpoint folder (or Hub reference) or from random weights.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from './tf.js';
import { Rng } from '../rng.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { resolveModelDir } from './hub.js';
import { SafetensorsFile } from './safetensors.js';
import { readSafetensors, type HostTensor } from './safetensors.js';
import { checkpointFiles } from './checkpoint-files.js';
export { checkpointFiles } from './checkpoint-files.js';
import { CausalLM, PROJECTIONS, projectionPath, type DecoderLayer, type Linear, type ModelWeights, type ProjectionName } from './model.js';
import { readJsonFile } from '../runtime/json-file.js';

/** [out, in] of each projection. */
function projectionShape(config: ModelConfig, name: ProjectionName): [number, number] {
  const { hiddenSize: h, numHeads, numKvHeads, headDim, intermediateSize: m } = config;
  switch (name) {
    case 'q_proj': return [numHeads * headDim, h];
    case 'k_proj':
    case 'v_proj': return [numKvHeads * headDim, h];
    case 'o_proj': return [h, numHeads * headDim];
    case 'gate_proj':
    case 'up_proj': return [m, h];
    case 'down_proj': return [h, m];
  }
}

function hasBias(config: ModelConfig, name: ProjectionName): boolean {
  if (name === 'q_proj' || name === 'k_proj' || name === 'v_proj') return config.attentionBias;
  if (name === 'o_proj') return config.outputBias;
  return config.mlpBias;
}

/** Where each weight comes from: a name → [shape, host data] source, checked as it is taken. */
type WeightSource = (name: string, shape: number[]) => Float32Array;

function buildWeights(config: ModelConfig, take: WeightSource): ModelWeights {
  const t1 = (name: string, n: number) => tf.tensor1d(take(name, [n]));
  const { hiddenSize: h, vocabSize: v, headDim } = config;
  const embedTokens = tf.tensor2d(take('model.embed_tokens.weight', [v, h]), [v, h]);
  const lmHead = config.tieWordEmbeddings ? embedTokens : tf.tensor2d(take('lm_head.weight', [v, h]), [v, h]);
  const layers: DecoderLayer[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const proj = {} as Record<ProjectionName, Linear>;
    for (const name of PROJECTIONS) {
      const path = projectionPath(i, name);
      const [out, inp] = projectionShape(config, name);
      const weight = tf.tensor2d(take(`${path}.weight`, [out, inp]), [out, inp]);
      proj[name] = {
        weightT: tf.transpose(weight) as tf.Tensor2D,
        bias: hasBias(config, name) ? t1(`${path}.bias`, out) : undefined,
        inFeatures: inp,
        outFeatures: out,
        path,
      };
      weight.dispose();
    }
    layers.push({
      inputNorm: t1(`model.layers.${i}.input_layernorm.weight`, h),
      postAttentionNorm: t1(`model.layers.${i}.post_attention_layernorm.weight`, h),
      qNorm: config.qkNorm ? t1(`model.layers.${i}.self_attn.q_norm.weight`, headDim) : undefined,
      kNorm: config.qkNorm ? t1(`model.layers.${i}.self_attn.k_norm.weight`, headDim) : undefined,
      proj,
    });
  }
  return { embedTokens, lmHead, finalNorm: t1('model.norm.weight', h), layers };
}


export async function loadModel(dirOrRef: string, opts: { dtype?: 'float32'; seed?: number; cacheDir?: string } = {}): Promise<CausalLM> {
  if (opts.dtype && opts.dtype !== 'float32') throw new Error(`loadModel: dtype ${opts.dtype} is not supported (float32 only)`);
  const dir = await resolveModelDir(dirOrRef, { cacheDir: opts.cacheDir });
  const config = readModelConfig(dir);
  // Every shard stays open; each tensor is read from its offset, converted to float32 and handed to the
  // backend before the next one is read, so host memory holds one tensor at a time, not the checkpoint.
  const shards: SafetensorsFile[] = [];
  const where = new Map<string, SafetensorsFile>();
  try {
    for (const path of checkpointFiles(dir)) {
      const shard = new SafetensorsFile(path);
      shards.push(shard);
      for (const name of shard.names) where.set(name, shard);
    }
    const take: WeightSource = (name, shape) => {
      const shard = where.get(name);
      if (!shard) throw new Error(`${dir}: checkpoint has no tensor "${name}" (expected shape [${shape}])`);
      const stored = shard.header[name].shape;
      if (stored.length !== shape.length || stored.some((d, i) => d !== shape[i])) {
        throw new Error(`${shard.path}: tensor "${name}" has shape [${stored}], expected [${shape}]`);
      }
      return shard.read(name).data;
    };
    const weights = buildWeights(config, take);
    return new CausalLM(config, weights, { dir, seed: opts.seed });
  } finally {
    for (const shard of shards) shard.close();
  }
}

/** Random weights as transformers initialises them: normal(0, initializer_range), norms one, biases zero. */
export function createModel(config: ModelConfig, opts: { seed: number }): CausalLM {
  const rng = new Rng(opts.seed);
  const std = Number(config.raw.initializer_range ?? 0.02);
  const take: WeightSource = (name, shape) => {
    const count = shape.reduce((a, b) => a * b, 1);
    if (/norm\.weight$/.test(name)) return new Float32Array(count).fill(1);
    if (/\.bias$/.test(name)) return new Float32Array(count);
    // Drawn on the host from the project Rng: identical on every backend, and no device read-back
    // (tfjs-webgpu has no synchronous one in Node).
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = std * rng.normal();
    return data;
  };
  return new CausalLM(config, buildWeights(config, take), { seed: opts.seed });
}
