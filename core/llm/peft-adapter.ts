// Writing a PEFT adapter folder from plain weights (adapter_config.json + adapter_model.safetensors):
// no tensor code, so checkpoints and any engine's export write the same files.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubIdOfCachedFolder } from '../hf-env.js';
import type { PeftLoraSettings } from './peft-config.js';
import { writeSafetensors } from './safetensors.js';

/** How PEFT names the base model of a model loaded from `dir`: its Hub id when it is a Hub cache snapshot, else the folder. */
export function peftBaseModelName(dir: string | undefined): string | undefined {
  return dir ? (hubIdOfCachedFolder(dir) ?? dir) : undefined;
}

/** Writes adapter weights (by PEFT name) and their LoRA config as a PEFT adapter folder. */
export function writePeftAdapter(dir: string, weights: Record<string, { shape: number[]; data: Float32Array }>, c: PeftLoraSettings, baseModelNameOrPath: string | undefined): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelNameOrPath ?? null,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: c.targetModules,
    use_rslora: c.useRslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
    revision: null,
  };
  writeSafetensors(join(dir, 'adapter_model.safetensors'), weights);
  const configPath = join(dir, 'adapter_config.json');
  writeFileSync(`${configPath}.tmp-${process.pid}`, JSON.stringify(config, null, 2));
  renameSync(`${configPath}.tmp-${process.pid}`, configPath);
}
