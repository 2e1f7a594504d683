// lora.apply: attaches LoRA adapters (PEFT's init; base weights frozen) to a model, or loads an existing
// PEFT adapter folder. The output is the same model object, now with `model.lora` set.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { of } from 'rxjs';
import { z } from 'zod';
import { isHubId, resolveModelDir } from '../core/llm/hub.js';
import { modelEngineOf } from '../core/engine/model-engine.js';
import { PROJECTIONS } from '../core/llm/projections.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

const projection = z.enum(PROJECTIONS);

export const loraApplyConfig = z.strictObject({
  r: z.number().int().positive().default(16).describe('LoRA rank.'),
  alpha: z.number().positive().default(16).describe('lora_alpha: the update is scaled by alpha/r (alpha/√r with rsLoRA).'),
  dropout: z.number().min(0).lt(1).default(0).describe('Dropout on the adapter input while training.'),
  target_modules: z.array(projection).min(1).default([...PROJECTIONS]).describe('Projections that get adapters.'),
  use_rslora: z.boolean().default(false).describe('Rank-stabilised LoRA: scale alpha/√r.'),
  seed: z.number().int().optional().describe("Seed of A's Kaiming-uniform init; default the graph's seed."),
  adapter: z
    .string()
    .optional()
    .describe('A PEFT adapter folder (adapter_config.json + adapter_model.safetensors; relative to the graph file) or Hub id to load instead of a fresh init; its own config decides r, alpha and targets.'),
});

export const loraApply = defineNode({
  type: 'lora.apply',
  version: 1,
  description: 'Attaches LoRA adapters to a model (PEFT init, or an existing PEFT adapter); only they are trained.',
  inputs: { model: { type: ports.model } },
  outputs: { model: { type: ports.model, description: 'The same model with LoRA attached.' } },
  config: loraApplyConfig,
  async run(ctx, inputs) {
    const c = ctx.config;
    const model = inputs.model;
    const engine = modelEngineOf(ctx.services, model, `lora.apply ${ctx.id}`);
    if (c.adapter !== undefined) {
      const local = resolve(ctx.baseDir, c.adapter);
      if (!existsSync(local) && !isHubId(c.adapter)) throw new Error(`lora.apply ${ctx.id}: adapter folder ${local} not found`);
      const dir = existsSync(local) ? local : await resolveModelDir(c.adapter, { kind: 'adapter' }).catch((error: Error) => {
        throw new Error(`lora.apply ${ctx.id}: ${error.message}`);
      });
      engine.loadPeftAdapter(model, dir);
    } else {
      const seed = c.seed ?? (typeof ctx.services.seed === 'number' ? ctx.services.seed : 0);
      engine.attachLora(model, { r: c.r, alpha: c.alpha, dropout: c.dropout, targetModules: c.target_modules, useRslora: c.use_rslora, seed });
    }
    const lora = model.lora!;
    const { base, trainable } = engine.parameterCounts(model);
    const total = base + trainable;
    const percent = (100 * trainable) / total;
    // Worded as PEFT's print_trainable_parameters().
    ctx.metrics.event(
      'info',
      `LoRA r ${lora.config.r}, alpha ${lora.config.alpha} on ${lora.config.targetModules.join(', ')}${c.adapter !== undefined ? ` (from ${c.adapter})` : ''}: ` +
        `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${percent.toFixed(4)}`,
      { trainable, total, r: lora.config.r, alpha: lora.config.alpha, targetModules: lora.config.targetModules },
    );
    return { model: of(model) };
  },
});
