// export.merged: writes the model with its LoRA adapter folded into the base weights, in the Hugging
// Face layout (config.json with the dtype, model.safetensors in bf16/f16/f32, generation_config.json,
// tokenizer files and the chat template). The merge goes into copies of the weights, so a model still
// in use (an evaluation after training) is left exactly as it was.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { modelEngineOf } from '../core/engine/model-engine.js';
import { TOKENIZER_FILES } from '../core/llm/tokenizer-files.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { outputPath } from './export-paths.js';

export const exportMergedConfig = z.strictObject({
  path: z.string().min(1).default('merged').describe("Output folder, relative to the run's --out folder unless absolute."),
  dtype: z.enum(['bfloat16', 'float16', 'float32']).default('bfloat16').describe('Storage dtype of model.safetensors (and torch_dtype in config.json).'),
  tokenizer_dir: z
    .string()
    .optional()
    .describe("Folder whose tokenizer files are copied (relative to the graph file); default the model's source folder."),
});

/** The tokenizer-side files of `dir`, with the chat template replaced by `template` when given. */
export function tokenizerFilesFrom(dir: string, template: string | undefined): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of TOKENIZER_FILES) {
    const path = join(dir, name);
    if (existsSync(path)) files[name] = readFileSync(path, 'utf8');
  }
  if (files['tokenizer.json'] === undefined) throw new Error(`no tokenizer.json in ${dir}`);
  if (template !== undefined) {
    files['chat_template.jinja'] = template;
    // transformers prefers chat_template.jinja, but a template left in tokenizer_config.json would disagree with it.
    if (files['tokenizer_config.json'] !== undefined) {
      const config = JSON.parse(files['tokenizer_config.json']) as Record<string, unknown>;
      if ('chat_template' in config) {
        delete config.chat_template;
        files['tokenizer_config.json'] = JSON.stringify(config, null, 2);
      }
    }
  }
  return files;
}

export const exportMerged = defineNode({
  type: 'export.merged',
  version: 1,
  description: 'Saves the model with its LoRA merged, in the Hugging Face layout (bf16/f16/f32 safetensors, config, tokenizer, chat template).',
  inputs: {
    model: { type: ports.model, description: "The trained model (train.grpo's `trained` output)." },
    template: { type: ports.chatTemplate, optional: true, description: 'Written as chat_template.jinja (the template the model was trained with).' },
  },
  outputs: {},
  config: exportMergedConfig,
  run(ctx, inputs) {
    const { model, template } = inputs;
    const where = `export.merged ${ctx.id}`;
    const engine = modelEngineOf(ctx.services, model, where);
    const tokenizerDir = ctx.config.tokenizer_dir !== undefined ? resolve(ctx.baseDir, ctx.config.tokenizer_dir) : model.dir;
    if (tokenizerDir === undefined) throw new Error(`${where}: the model has no source folder to copy tokenizer files from; set tokenizer_dir`);
    const target = outputPath(ctx.outDir, ctx.config.path);
    const done = (async () => {
      let tokenizerFiles: Record<string, string>;
      try {
        tokenizerFiles = tokenizerFilesFrom(tokenizerDir, template?.source);
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`);
      }
      await engine.saveModel(model, target, { dtype: ctx.config.dtype, tokenizerFiles });
      ctx.metrics.event('info', `merged model exported to ${target} (${ctx.config.dtype})`, { export: target });
    })();
    return { done };
  },
});
