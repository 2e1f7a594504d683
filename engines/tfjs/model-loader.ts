// Building a CausalLM: from a checkpoint folder (or Hub reference) or from random weights.
import { tf } from './tf.js';
import { Rng } from '../../core/rng.js';
import { readModelConfig, type ModelConfig } from '../../core/llm/config.js';
import { resolveModelDir } from '../../core/llm/hub.js';
import { SafetensorsFile } from '../../core/llm/safetensors.js';
import { checkpointFiles } from '../../core/llm/checkpoint-files.js';
export { checkpointFiles } from '../../core/llm/checkpoint-files.js';
import { CausalLM, type ModelWeights } from './model.js';
import { parameterSpecs, setParameter } from './parameters.js';

/** Where each weight comes from: a name → [shape, host data] source, checked as it is taken. */
type WeightSource = (name: string, shape: number[]) => Float32Array;

/** The weights named by the parameter list, each taken from `take` (checked there) in the model's layout. */
function buildWeights(config: ModelConfig, take: WeightSource): ModelWeights {
  const weights = { layers: [] } as unknown as ModelWeights;
  for (const spec of parameterSpecs(config)) {
    const host = take(spec.name, spec.shape);
    if (!spec.transposed) setParameter(weights, spec, tf.tensor(host, spec.shape));
    else {
      const stored = tf.tensor2d(host, spec.shape as [number, number]);
      setParameter(weights, spec, tf.transpose(stored));
      stored.dispose();
    }
  }
  if (config.tieWordEmbeddings) weights.lmHead = weights.embedTokens;
  return weights;
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
