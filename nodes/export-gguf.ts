// export.gguf: writes the trained model as GGUF for llama.cpp, Ollama and node-llama-cpp (Unsloth's
// save_pretrained_gguf): the base checkpoint the model was loaded from with the LoRA adapter merged in,
// quantized as `type` says; or, with `merge: false`, the base as `type` plus the adapter as a GGUF LoRA
// adapter that llama.cpp applies at load. Connect its model input to the trainer's `trained` output.
import { mkdtemp, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { z } from 'zod';
import { ADAPTER_FILE_TYPES, exportGguf } from '../core/gguf/export.js';
import { GGUF_FILE_TYPE_NAMES } from '../core/gguf/format.js';
import { modelEngineOf } from '../core/engine/model-engine.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { outputPath } from './export-paths.js';

export const exportGgufConfig = z.strictObject({
  path: z.string().min(1).default('model.gguf').describe("The model's GGUF file, relative to the run's --out folder unless absolute."),
  type: z.enum(GGUF_FILE_TYPE_NAMES).default('q4_k_m').describe("Tensor types: f32, f16, bf16, q8_0, q4_0, or q4_k_m (llama.cpp's k-quant mix)."),
  merge: z.boolean().default(true).describe('Merge the LoRA adapter into the weights (one file); false writes the base model and the adapter as two files.'),
  adapter_path: z.string().min(1).default('adapter.gguf').describe('With merge: false, the LoRA adapter GGUF (relative to --out unless absolute).'),
  adapter_type: z.enum(ADAPTER_FILE_TYPES).default('f16').describe('With merge: false, the adapter tensors\' type.'),
});

export const exportGgufNode = defineNode({
  type: 'export.gguf',
  version: 1,
  description: "Saves the model as GGUF for llama.cpp/Ollama (LoRA merged, or base + LoRA adapter GGUF), f32 to q4_k_m.",
  inputs: {
    model: { type: ports.model, description: "The trained model (train.grpo's `trained` output); its base weights are read from the folder it was loaded from." },
    template: { type: ports.chatTemplate, optional: true, description: "Written as tokenizer.chat_template (the template the model was trained with) instead of the folder's." },
  },
  outputs: {},
  config: exportGgufConfig,
  run(ctx, inputs) {
    const { model, template } = inputs;
    const where = `export.gguf ${ctx.id}`;
    const engine = modelEngineOf(ctx.services, model, where);
    const modelDir = model.dir;
    if (modelDir === undefined) throw new Error(`${where}: the model was not loaded from a folder (model.create?); save it with export.merged and run grpoflow export-gguf on that folder`);
    const type = ctx.config.type;
    const target = outputPath(ctx.outDir, ctx.config.path);
    const done = (async () => {
      mkdirSync(dirname(target), { recursive: true });
      // The adapter goes through PEFT's format in a scratch folder: the GGUF export reads folders.
      const scratch = model.lora ? await mkdtemp(join(dirname(target), '.export-gguf-')) : undefined;
      try {
        if (scratch) await engine.savePeftAdapter(model, scratch);
        const chatTemplate = template?.source;
        try {
          if (!scratch || ctx.config.merge) {
            await exportGguf({ modelDir, adapterDir: scratch, merge: true, type, out: target, chatTemplate });
          } else {
            await exportGguf({ modelDir, type, out: target, chatTemplate });
            const adapterTarget = outputPath(ctx.outDir, ctx.config.adapter_path);
            mkdirSync(dirname(adapterTarget), { recursive: true });
            await exportGguf({ modelDir, adapterDir: scratch, merge: false, type: ctx.config.adapter_type, out: adapterTarget, name: `${basename(modelDir)}-lora` });
            ctx.metrics.event('info', `LoRA adapter GGUF exported to ${adapterTarget}`, { export: adapterTarget });
          }
        } catch (error) {
          throw new Error(`${where}: ${(error as Error).message}`);
        }
      } finally {
        if (scratch) await rm(scratch, { recursive: true, force: true });
      }
      const what = scratch && ctx.config.merge ? 'model with its LoRA merged' : 'model';
      ctx.metrics.event('info', `${what} exported to ${target} (GGUF ${type})`, { export: target });
    })();
    return { done };
  },
});
