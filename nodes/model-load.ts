// model.load: a causal LM and its tokenizer from a checkpoint folder or a Hugging Face Hub id (the local
// cache first; downloaded when online). Both are resources shared by every node of the run.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { of } from 'rxjs';
import { z } from 'zod';
import { resolveModelDir } from '../core/llm/hub.js';
import { modelEngineNamed, modelEngineOf, type ModelHandle } from '../core/engine/model-engine.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

export const modelLoadConfig = z.strictObject({
  path: z.string().min(1).describe('Checkpoint folder (relative to the graph file) or Hub id ORG/NAME (Hugging Face cache, else downloaded).'),
  revision: z.string().optional().describe('Hub revision (branch, tag or commit) when `path` is a Hub id.'),
  dtype: z.enum(['float32']).default('float32').describe('Compute dtype; bf16/f16 checkpoints are upcast to float32 (the only one supported).'),
  tokenizer: z.string().optional().describe('Folder with tokenizer.json (relative to the graph file); default the model folder.'),
  engine: z.string().min(1).default('tfjs').describe('The model engine that holds the weights (`grpoflow nodes` lists the installed ones; built in: tfjs).'),
  cache_dir: z.string().optional().describe('Hugging Face hub cache folder; default HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub.'),
});

/** A folder relative to the graph file when one exists there; otherwise the text as given (a Hub id, or an absolute path). */
export function resolveLocalOrHub(ref: string, baseDir: string): string {
  const local = resolve(baseDir, ref);
  return existsSync(local) ? local : ref;
}

/**
 * Whether `ref` is written as a path, not as a Hub id ORG/NAME: it starts with `.`, `/` or `~`, has a
 * backslash, or has more than one `/`. A missing one is reported as missing, not looked up on the Hub.
 */
export function looksLikePath(ref: string): boolean {
  return /^[.~/]/.test(ref) || ref.includes('\\') || ref.split('/').length > 2 || ref.endsWith('/');
}

/** Parameter count of the base weights (tied embeddings counted once), without LoRA. */
export function baseParameterCount(services: object, model: ModelHandle, where: string): number {
  return modelEngineOf(services, model, where).parameterCounts(model).base;
}

export const modelLoad = defineNode({
  type: 'model.load',
  version: 1,
  description: 'Loads a causal LM (Llama, Qwen2/3, Mistral families) and its tokenizer from a folder or Hub id.',
  inputs: {},
  outputs: {
    model: { type: ports.model },
    tokenizer: { type: ports.tokenizer },
  },
  config: modelLoadConfig,
  async run(ctx) {
    const c = ctx.config;
    const engine = modelEngineNamed(ctx.services, c.engine, `model.load ${ctx.id}`);
    const cacheDir = c.cache_dir !== undefined ? resolve(ctx.baseDir, c.cache_dir) : undefined;
    const ref = resolveLocalOrHub(c.path, ctx.baseDir);
    if (ref === c.path && looksLikePath(c.path) && !existsSync(c.path)) {
      throw new Error(`model.load ${ctx.id} path ${c.path}: no such folder (looked for ${resolve(ctx.baseDir, c.path)}, relative to the graph's folder)`);
    }
    const dir = await resolveModelDir(ref, { cacheDir, revision: c.revision });
    const tokenizerDir = c.tokenizer !== undefined ? resolve(ctx.baseDir, c.tokenizer) : dir;
    const tokenizer = await Tokenizer.fromDir(tokenizerDir).catch((error: Error) => {
      throw new Error(`model.load ${ctx.id}: tokenizer: ${error.message}`);
    });
    const seed = typeof ctx.services.seed === 'number' ? ctx.services.seed : 0;
    const model = await engine.load(dir, { dtype: c.dtype, seed });
    ctx.onTeardown(() => model.dispose());
    if (tokenizer.vocabSize > model.config.vocabSize) {
      throw new Error(
        `model.load ${ctx.id}: the tokenizer in ${tokenizerDir} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.config.vocabSize}; ` +
          'point `tokenizer:` at the tokenizer this model was trained with',
      );
    }
    const { numLayers, hiddenSize, vocabSize } = model.config;
    const parameters = engine.parameterCounts(model).base;
    ctx.metrics.event('info', `loaded ${dir}: ${parameters.toLocaleString('en-US')} parameters, ${numLayers} layers, hidden ${hiddenSize}, vocab ${vocabSize}`, { dir, parameters });
    return { model: of(model), tokenizer: of(tokenizer) };
  },
});
