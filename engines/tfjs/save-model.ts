// Saving a CausalLM as a Hugging Face checkpoint folder: config.json (transformers v4 layout, which
// both transformers 4.x/5.x and our loader read), model.safetensors with HF tensor names,
// generation_config.json and the tokenizer files. The folder is written next to its destination and
// renamed into place, so a reader never sees half a checkpoint.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { tf } from './tf.js';
import { readFloat32 } from './read-back.js';
import { architectureTraits } from '../../core/llm/architectures/index.js';
import type { CausalLM } from './model.js';
import type { SaveModelOptions } from '../../core/engine/model-engine.js';
import { getParameter, parameterSpecs } from './parameters.js';
import type { ModelConfig } from '../../core/llm/config.js';
import { writeSafetensors, type HostTensor, type SafetensorsWriteDtype } from '../../core/llm/safetensors.js';

export type { SaveModelOptions };

import { TOKENIZER_FILES } from '../../core/llm/tokenizer-files.js';

export { TOKENIZER_FILES };

/** Write `model` to `dir` in the Hugging Face layout, replacing any folder already there. */
export async function saveModel(model: CausalLM, dir: string, opts: SaveModelOptions): Promise<void> {
  if (model.lora && !model.lora.merged) {
    throw new Error('saveModel: the model has an unmerged LoRA adapter; merge it (mergeLora) or detach it first, or save the adapter with savePeftAdapter');
  }
  if (opts.tokenizerDir && opts.tokenizerFiles) throw new Error('saveModel: pass tokenizerDir or tokenizerFiles, not both');
  const target = resolve(dir);
  const tensors = await modelTensors(model);
  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    writeSafetensors(join(staging, 'model.safetensors'), tensors, { dtype: opts.dtype });
    writeJson(join(staging, 'config.json'), huggingFaceConfig(model.config, opts.dtype));
    writeJson(join(staging, 'generation_config.json'), generationConfig(model.config, opts.generationConfig));
    if (opts.tokenizerDir) {
      const found = TOKENIZER_FILES.filter((f) => existsSync(join(opts.tokenizerDir!, f)));
      if (!found.includes('tokenizer.json')) throw new Error(`saveModel: no tokenizer.json in tokenizerDir ${opts.tokenizerDir}`);
      for (const f of found) copyFileSync(join(opts.tokenizerDir, f), join(staging, f));
    }
    for (const [name, content] of Object.entries(opts.tokenizerFiles ?? {})) {
      if (name !== basename(name)) throw new Error(`saveModel: tokenizer file name "${name}" must be a plain file name`);
      writeFileSync(join(staging, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    }
    const tokenizerConfig = join(staging, 'tokenizer_config.json');
    if (existsSync(tokenizerConfig)) {
      const template = join(staging, 'chat_template.jinja');
      const portable = portableTokenizerConfig(JSON.parse(readFileSync(tokenizerConfig, 'utf8')), existsSync(template) ? readFileSync(template, 'utf8') : undefined);
      writeJson(tokenizerConfig, portable);
    }
    chmodSync(staging, 0o755); // mkdtemp makes it owner-only; a checkpoint folder is an ordinary one
    // Swap in: move an old folder aside first so the destination is never missing or mixed.
    const old = existsSync(target) ? `${staging}.old` : undefined;
    if (old) renameSync(target, old);
    renameSync(staging, target);
    if (old) rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * tokenizer_config.json in a form transformers 4.x and 5.x both load, beside the v4-layout config.json:
 * - `tokenizer_class` "TokenizersBackend" (v5's name; 4.x has no such class and fails) becomes
 *   "PreTrainedTokenizerFast", which 4.x resolves to its fast tokenizer and 5.x to TokenizersBackend
 *   (tokenizer_class_from_name special-cases the name; v5 also keeps it as an alias);
 * - `backend` (a v5-only key) is dropped: 5.x picks the tokenizers backend for a tokenizer.json anyway;
 * - `extra_special_tokens` given as a list (v5) becomes 4.x's `additional_special_tokens`;
 * - the chat template is also written inline (`chat_template`, the same text as chat_template.jinja):
 *   transformers before 4.47 reads only the inline one; later versions prefer the .jinja file.
 */
export function portableTokenizerConfig(config: Record<string, unknown>, chatTemplate: string | undefined): Record<string, unknown> {
  const out = { ...config };
  if (out.tokenizer_class === 'TokenizersBackend') out.tokenizer_class = 'PreTrainedTokenizerFast';
  delete out.backend;
  if (Array.isArray(out.extra_special_tokens)) {
    out.additional_special_tokens ??= out.extra_special_tokens;
    delete out.extra_special_tokens;
  }
  if (chatTemplate !== undefined) out.chat_template = chatTemplate;
  return out;
}

/**
 * The model's weights by Hugging Face tensor name, as host float32 ([out, in] for projections), read
 * back asynchronously one tensor at a time (at most one transposed copy on the device at once).
 */
export async function modelTensors(model: CausalLM): Promise<Record<string, HostTensor>> {
  const pending = parameterSpecs(model.config).map((spec) => ({ name: spec.name, tensor: getParameter(model.weights, spec), transpose: spec.transposed }));
  const out: Record<string, HostTensor> = {};
  for (const { name, tensor, transpose } of pending) {
    const source = transpose ? tf.transpose(tensor) : tensor;
    try {
      const [data] = await readFloat32([source], `saveModel ${name}`);
      out[name] = { shape: source.shape.slice(), data };
    } finally {
      if (source !== tensor) source.dispose();
    }
  }
  return out;
}

const TORCH_DTYPE: Record<SafetensorsWriteDtype, string> = { float32: 'float32', bfloat16: 'bfloat16', float16: 'float16' };

/**
 * config.json in the v4 layout (`rope_theta`, `rope_scaling`, `torch_dtype`), keeping the source
 * config's other keys (architecture-specific extras such as Qwen's sliding-window settings).
 */
export function huggingFaceConfig(config: ModelConfig, dtype: SafetensorsWriteDtype): Record<string, unknown> {
  const traits = architectureTraits(config.architecture);
  if (!traits) throw new Error(`saveModel: unknown architecture ${config.architecture}`);
  const raw = { ...config.raw };
  delete raw.rope_parameters;
  delete raw.dtype;
  delete raw.transformers_version;
  const s = config.ropeScaling;
  const ropeScaling = !s
    ? null
    : s.type === 'linear'
      ? { rope_type: 'linear', factor: s.factor }
      : {
          rope_type: 'llama3',
          factor: s.factor,
          low_freq_factor: s.lowFreqFactor,
          high_freq_factor: s.highFreqFactor,
          original_max_position_embeddings: s.originalMaxPositionEmbeddings,
        };
  const eos = config.eosTokenIds.length === 0 ? null : config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds;
  return {
    ...raw,
    architectures: [config.architecture],
    model_type: traits.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: ropeScaling,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: config.attentionBias,
    ...(traits.modelType === 'llama' ? { mlp_bias: config.mlpBias } : {}),
    bos_token_id: config.bosTokenId ?? null,
    eos_token_id: eos,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: '4.46.0',
  };
}

function generationConfig(config: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const eos = config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds;
  return {
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenIds.length ? { eos_token_id: eos } : {}),
    ...extra,
    transformers_version: '4.46.0',
  };
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
