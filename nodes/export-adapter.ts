// export.adapter: writes the model's LoRA adapter in PEFT's format (adapter_config.json +
// adapter_model.safetensors), loadable by PEFT's PeftModel.from_pretrained and by our loader. Connect
// its model input to the trainer's `trained` output, so it runs once training has ended.
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { modelEngineOf } from '../core/engine/model-engine.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { outputPath } from './export-paths.js';

export const exportAdapterConfig = z.strictObject({
  path: z.string().min(1).default('adapter').describe("Output folder, relative to the run's --out folder unless absolute."),
  base_model_name_or_path: z
    .string()
    .optional()
    .describe("Recorded in adapter_config.json (what PEFT loads the adapter onto); default the model's Hub id when it came from the Hugging Face cache, else its folder."),
});

export const exportAdapter = defineNode({
  type: 'export.adapter',
  version: 1,
  description: "Saves the LoRA adapter in PEFT's format (adapter_config.json + adapter_model.safetensors).",
  inputs: { model: { type: ports.model, description: "The trained model (train.grpo's `trained` output)." } },
  outputs: {},
  config: exportAdapterConfig,
  run(ctx, inputs) {
    const model = inputs.model;
    if (!model.lora) throw new Error(`export.adapter ${ctx.id}: the model has no LoRA adapter to export`);
    const engine = modelEngineOf(ctx.services, model, `export.adapter ${ctx.id}`);
    const target = outputPath(ctx.outDir, ctx.config.path);
    const done = (async () => {
      // Written beside the target, then renamed, so the folder holds one whole adapter or none.
      const staging = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
      await rm(staging, { recursive: true, force: true });
      await engine.savePeftAdapter(model, staging, { baseModelNameOrPath: ctx.config.base_model_name_or_path });
      await rm(target, { recursive: true, force: true });
      await rename(staging, target);
      ctx.metrics.event('info', `adapter exported to ${target}`, { export: target });
    })();
    return { done };
  },
});
