// Export a Hugging Face checkpoint folder (and optionally a PEFT LoRA adapter) to GGUF files that
// llama.cpp loads: the model (with the adapter merged in, or not), or the adapter on its own
// (`general.type = adapter`), which llama.cpp applies on top of the base model's GGUF.
import { basename, resolve } from 'node:path';
import { checkpointFiles } from '../llm/checkpoint-files.js';
import { readModelConfig, type ModelConfig } from '../llm/config.js';
import { PEFT_PREFIX, loraScale, readPeftAdapterConfig } from '../llm/peft-config.js';
import { PROJECTIONS, projectionPath, type ProjectionName } from '../llm/projections.js';
import { SafetensorsFile, readSafetensors, type HostTensor } from '../llm/safetensors.js';
import { GGML_TYPE_NAME, GGUF_FILE_TYPES, GGUF_FILE_TYPE_NAMES, type GgufFileType } from './format.js';
import { GGUF_PROJECTION, ggufArchitecture, ggufTensorName, hyperparameterMetadata, llama3RopeFactors, permuteRotaryRows, rotaryHeads } from './llama-family.js';
import { tensorType } from './quant-mix.js';
import { tokenizerMetadata } from './tokenizer-metadata.js';
import { gguf, writeGguf, type GgufMetadataValue, type GgufTensor } from './writer.js';

export interface GgufExportResult {
  path: string;
  /** Each tensor written, with its ggml type. */
  tensors: { name: string; type: string }[];
  /** Things the file cannot express that a user should know. */
  notes: string[];
}

export interface ModelGgufOptions {
  modelDir: string;
  out: string;
  type: GgufFileType;
  /** A PEFT adapter folder whose B·A is merged into the weights before writing. */
  mergeAdapterDir?: string;
  /** `general.name` (default: the model folder's name). */
  name?: string;
  /** Written as `tokenizer.chat_template` instead of the folder's own template. */
  chatTemplate?: string;
  onTensor?: (index: number, count: number, name: string) => void;
}

export function checkFileType(type: string, where: string): GgufFileType {
  if (!(GGUF_FILE_TYPE_NAMES as string[]).includes(type)) throw new Error(`${where}: unknown GGUF type "${type}" (one of ${GGUF_FILE_TYPE_NAMES.join(', ')})`);
  return type as GgufFileType;
}

/** The LoRA pairs of a PEFT adapter, keyed by module path (`model.layers.0.self_attn.q_proj`). */
interface LoadedAdapter {
  alpha: number;
  r: number;
  scale: number;
  pairs: Map<string, { layer: number; projection: ProjectionName; A: HostTensor; B: HostTensor }>;
}

function loadAdapter(dir: string, config: ModelConfig): LoadedAdapter {
  const adapter = readPeftAdapterConfig(dir);
  const unknown = adapter.targetModules.filter((m) => !(PROJECTIONS as readonly string[]).includes(m));
  if (unknown.length) throw new Error(`${adapter.configPath}: target modules ${unknown.join(', ')} are not supported for GGUF export (only ${PROJECTIONS.join(', ')})`);
  if (!(Number.isInteger(adapter.r) && adapter.r > 0)) throw new Error(`${adapter.configPath}: r must be a positive integer, got ${adapter.r}`);
  const tensors = readSafetensors(adapter.weightsPath);
  const pairs: LoadedAdapter['pairs'] = new Map();
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const projection of adapter.targetModules as ProjectionName[]) {
      const path = projectionPath(layer, projection);
      const A = tensors.get(`${PEFT_PREFIX}${path}.lora_A.weight`);
      const B = tensors.get(`${PEFT_PREFIX}${path}.lora_B.weight`);
      if (!A || !B) throw new Error(`${adapter.weightsPath}: missing ${PEFT_PREFIX}${path}.lora_${A ? 'B' : 'A'}.weight`);
      if (A.shape[0] !== adapter.r || B.shape[1] !== adapter.r) throw new Error(`${adapter.weightsPath}: ${path} has lora_A [${A.shape}] and lora_B [${B.shape}], not rank ${adapter.r}`);
      pairs.set(path, { layer, projection, A, B });
    }
  }
  if (pairs.size * 2 !== tensors.size) {
    const expected = new Set([...pairs.keys()].flatMap((p) => [`${PEFT_PREFIX}${p}.lora_A.weight`, `${PEFT_PREFIX}${p}.lora_B.weight`]));
    const extra = [...tensors.keys()].filter((n) => !expected.has(n));
    throw new Error(`${adapter.weightsPath}: tensors not covered by the config's target modules: ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}`);
  }
  return { alpha: adapter.alpha, r: adapter.r, scale: loraScale(adapter), pairs };
}

/** W + scale · B · A, for W [out, in], B [out, r], A [r, in]. */
function mergeLoraInto(weight: HostTensor, pair: { A: HostTensor; B: HostTensor }, scale: number): Float32Array {
  const [out, inner] = weight.shape;
  const r = pair.A.shape[0];
  if (pair.B.shape[0] !== out || pair.A.shape[1] !== inner) throw new Error(`LoRA shapes A [${pair.A.shape}], B [${pair.B.shape}] do not fit weight [${weight.shape}]`);
  const merged = Float32Array.from(weight.data);
  const a = pair.A.data;
  const b = pair.B.data;
  for (let o = 0; o < out; o++) {
    const row = merged.subarray(o * inner, (o + 1) * inner);
    for (let k = 0; k < r; k++) {
      const coefficient = scale * b[o * r + k];
      if (coefficient === 0) continue;
      const aRow = a.subarray(k * inner, (k + 1) * inner);
      for (let i = 0; i < inner; i++) row[i] += coefficient * aRow[i];
    }
  }
  return merged;
}

function generalMetadata(config: ModelConfig, name: string, type: 'model' | 'adapter'): Map<string, GgufMetadataValue> {
  return new Map([
    ['general.architecture', gguf.string(ggufArchitecture(config).name)],
    ['general.type', gguf.string(type)],
    ['general.name', gguf.string(name)],
  ]);
}

/** Write a model GGUF of `type` from a checkpoint folder, reading and writing one tensor at a time. */
export async function writeModelGguf(options: ModelGgufOptions): Promise<GgufExportResult> {
  const config = readModelConfig(options.modelDir);
  const arch = ggufArchitecture(config);
  const notes: string[] = [];
  if (config.slidingWindow !== undefined && config.slidingWindow < config.maxPositionEmbeddings) {
    notes.push(`sliding_window ${config.slidingWindow} is not written: llama.cpp's ${arch.name} graph attends to the whole context`);
  }
  const adapter = options.mergeAdapterDir ? loadAdapter(options.mergeAdapterDir, config) : undefined;
  const readers: SafetensorsFile[] = checkpointFiles(options.modelDir).map((f) => new SafetensorsFile(f));
  try {
    const planned: (Omit<GgufTensor, 'type'> & { layer?: number })[] = [];
    const ropeFactors = llama3RopeFactors(config);
    if (ropeFactors) planned.push({ name: 'rope_freqs.weight', shape: [ropeFactors.length], values: () => ropeFactors });
    for (const reader of readers) {
      for (const [hfName, { shape }] of Object.entries(reader.header)) {
        const mapped = ggufTensorName(hfName);
        if (!mapped) continue;
        if (mapped.name === 'output.weight' && config.tieWordEmbeddings) continue; // llama.cpp reuses token_embd
        const pair = mapped.projection && hfName.endsWith('.weight') ? adapter?.pairs.get(projectionPath(mapped.layer!, mapped.projection)) : undefined;
        const heads = rotaryHeads(config, mapped.projection);
        planned.push({
          name: mapped.name,
          shape,
          layer: mapped.layer,
          values: () => {
            const tensor = reader.read(hfName);
            const data = pair ? mergeLoraInto(tensor, pair, adapter!.scale) : tensor.data;
            return heads ? permuteRotaryRows(data, shape[0], heads) : data;
          },
        });
      }
    }
    if (!planned.some((t) => t.name === 'token_embd.weight')) throw new Error(`${options.modelDir}: the checkpoint has no model.embed_tokens.weight`);
    if (!config.tieWordEmbeddings && !planned.some((t) => t.name === 'output.weight')) throw new Error(`${options.modelDir}: config.json says tie_word_embeddings=false but the checkpoint has no lm_head.weight`);
    // llama.cpp does not need an order; this one (embeddings, blocks in order, output) reads like the converter's.
    const rank = (t: { name: string; layer?: number }) => (t.layer !== undefined ? 1 + t.layer : t.name.startsWith('output') ? 1e9 : 0);
    planned.sort((a, b) => rank(a) - rank(b));
    const tiedOutput = !planned.some((t) => t.name === 'output.weight');
    const tensors: GgufTensor[] = planned.map((t) => ({ ...t, type: tensorType(options.type, t, { numLayers: config.numLayers, tiedOutput }) }));

    const metadata = generalMetadata(config, options.name ?? basename(resolve(options.modelDir)), 'model');
    metadata.set('general.file_type', gguf.u32(GGUF_FILE_TYPES[options.type].ftype));
    metadata.set('general.quantization_version', gguf.u32(2));
    for (const [k, v] of hyperparameterMetadata(config)) metadata.set(k, v);
    for (const [k, v] of await tokenizerMetadata(options.modelDir, config.vocabSize, options.chatTemplate)) metadata.set(k, v);

    writeGguf(options.out, metadata, tensors, (i, t) => options.onTensor?.(i, tensors.length, t.name));
    return { path: options.out, tensors: tensors.map((t) => ({ name: t.name, type: GGML_TYPE_NAME[t.type] })), notes };
  } finally {
    for (const reader of readers) reader.close();
  }
}

export interface AdapterGgufOptions {
  /** The base model's folder (for the architecture and the q/k permutation). */
  modelDir: string;
  adapterDir: string;
  out: string;
  type: 'f32' | 'f16' | 'bf16';
  name?: string;
}

export const ADAPTER_FILE_TYPES = ['f32', 'f16', 'bf16'] as const;

/**
 * Write a PEFT LoRA adapter as a GGUF LoRA adapter: `blk.N.<proj>.weight.lora_a` ([r, in]) and
 * `.lora_b` ([out, r], q/k rows permuted as the base weights are), `adapter.lora.alpha` such that
 * llama.cpp's scale alpha/r equals PEFT's (alpha·√r is written for rsLoRA, whose scale is alpha/√r).
 */
export function writeAdapterGguf(options: AdapterGgufOptions): GgufExportResult {
  const config = readModelConfig(options.modelDir);
  return writeLoraGguf(config, loadAdapter(options.adapterDir, config), options.out, options.type, options.name ?? basename(resolve(options.adapterDir)));
}

export interface AdapterWeightsGgufOptions {
  /** The base model's config (architecture and the q/k permutation). */
  config: ModelConfig;
  /** The adapter's tensors by PEFT name (`base_model.model.<module>.lora_A.weight`, `.lora_B.weight`): a policy snapshot. */
  weights: Record<string, HostTensor>;
  /** PEFT's scale (alpha / r, or alpha / √r with rsLoRA) and the rank. */
  scale: number;
  r: number;
  out: string;
  type: 'f32' | 'f16' | 'bf16';
  name?: string;
}

/** A LoRA adapter held in memory (a policy version) as a GGUF LoRA adapter, as writeAdapterGguf writes a PEFT folder. */
export function writeAdapterWeightsGguf(options: AdapterWeightsGgufOptions): GgufExportResult {
  const { config, weights } = options;
  const pairs: LoadedAdapter['pairs'] = new Map();
  const suffix = /\.lora_([AB])\.weight$/;
  for (const [name, tensor] of Object.entries(weights)) {
    const match = suffix.exec(name);
    const module = match && name.startsWith(PEFT_PREFIX) ? name.slice(PEFT_PREFIX.length, match.index) : undefined;
    const layerMatch = module && /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$/.exec(module);
    if (!layerMatch || !(PROJECTIONS as readonly string[]).includes(layerMatch[2])) throw new Error(`adapter weights: "${name}" is not a LoRA tensor of a projection GGUF export supports (${PROJECTIONS.join(', ')})`);
    const entry = pairs.get(module!) ?? { layer: Number(layerMatch[1]), projection: layerMatch[2] as ProjectionName, A: undefined!, B: undefined! };
    entry[match![1] as 'A' | 'B'] = tensor;
    pairs.set(module!, entry);
  }
  for (const [module, pair] of pairs) {
    if (!pair.A || !pair.B) throw new Error(`adapter weights: ${module} has no lora_${pair.A ? 'B' : 'A'}`);
    if (pair.A.shape[0] !== options.r || pair.B.shape[1] !== options.r) throw new Error(`adapter weights: ${module} has lora_A [${pair.A.shape}] and lora_B [${pair.B.shape}], not rank ${options.r}`);
  }
  return writeLoraGguf(config, { alpha: options.scale * options.r, r: options.r, scale: options.scale, pairs }, options.out, options.type, options.name ?? 'adapter');
}

function writeLoraGguf(config: ModelConfig, adapter: LoadedAdapter, out: string, fileType: AdapterGgufOptions['type'], name: string): GgufExportResult {
  if (!(ADAPTER_FILE_TYPES as readonly string[]).includes(fileType)) {
    throw new Error(`a LoRA adapter GGUF is written as ${ADAPTER_FILE_TYPES.join(', ')}, not ${fileType}; to quantize, merge the adapter into the model (--merge)`);
  }
  const type = GGUF_FILE_TYPES[fileType].base;
  const tensors: GgufTensor[] = [];
  for (const [, pair] of adapter.pairs) {
    const tensorName = `blk.${pair.layer}.${GGUF_PROJECTION[pair.projection]}.weight`;
    const heads = rotaryHeads(config, pair.projection);
    // lora_b's row length is r, rarely a whole number of blocks; these files hold float types only.
    tensors.push({ name: `${tensorName}.lora_a`, shape: pair.A.shape, type, values: () => pair.A.data });
    tensors.push({ name: `${tensorName}.lora_b`, shape: pair.B.shape, type, values: () => (heads ? permuteRotaryRows(pair.B.data, pair.B.shape[0], heads) : pair.B.data) });
  }
  const metadata = generalMetadata(config, name, 'adapter');
  metadata.set('general.file_type', gguf.u32(GGUF_FILE_TYPES[fileType].ftype));
  metadata.set('adapter.type', gguf.string('lora'));
  metadata.set('adapter.lora.alpha', gguf.f32(adapter.scale * adapter.r));
  writeGguf(out, metadata, tensors);
  return { path: out, tensors: tensors.map((t) => ({ name: t.name, type: GGML_TYPE_NAME[t.type] })), notes: [] };
}

export interface GgufExportOptions {
  modelDir: string;
  adapterDir?: string;
  /** With an adapter: write one model with B·A merged in (true) or the adapter alone as a LoRA GGUF (false). */
  merge?: boolean;
  type: GgufFileType;
  out: string;
  /** `general.name` (default: the model's, or the adapter's, folder name). */
  name?: string;
  chatTemplate?: string;
  onTensor?: (index: number, count: number, name: string) => void;
}

/** What `grpoflow export-gguf` writes: the model, the merged model, or the adapter alone. */
export async function exportGguf(options: GgufExportOptions): Promise<GgufExportResult> {
  if (options.adapterDir && !options.merge) {
    return writeAdapterGguf({ modelDir: options.modelDir, adapterDir: options.adapterDir, out: options.out, type: options.type as AdapterGgufOptions['type'], name: options.name });
  }
  return writeModelGguf({
    modelDir: options.modelDir,
    out: options.out,
    type: options.type,
    mergeAdapterDir: options.adapterDir,
    name: options.name,
    chatTemplate: options.chatTemplate,
    onTensor: options.onTensor,
  });
}
