// A PEFT LoRA adapter folder's configuration (adapter_config.json), checked for what we support.
// Free of tensor code: the trainer's loader (lora.ts) and the GGUF export (core/gguf) both read it.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../runtime/json-file.js';
import { join } from 'node:path';
import { PROJECTIONS, projectionPath } from './projections.js';

/** PEFT's prefix on adapter tensor names: `base_model.model.` + the module path + `.lora_A.weight`. */
export const PEFT_PREFIX = 'base_model.model.';

export interface PeftAdapterConfig {
  configPath: string;
  weightsPath: string;
  r: number;
  alpha: number;
  dropout: number;
  /** Projection names (`q_proj` … `down_proj`). */
  targetModules: string[];
  useRslora: boolean;
}

/** The adapter's multiplier on B·A: alpha/r (alpha/√r with rsLoRA). */
export function loraScale(config: { r: number; alpha: number; useRslora: boolean }): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

/** Read and check `DIR/adapter_config.json` (and that `adapter_model.safetensors` exists). */
export function readPeftAdapterConfig(dir: string): PeftAdapterConfig {
  const configPath = join(dir, 'adapter_config.json');
  const weightsPath = join(dir, 'adapter_model.safetensors');
  if (!existsSync(configPath)) throw new Error(`${dir}: missing adapter_config.json`);
  if (!existsSync(weightsPath)) throw new Error(`${dir}: missing adapter_model.safetensors`);
  const raw = readJsonFile(configPath) as Record<string, unknown>;
  if (raw.peft_type !== 'LORA') throw new Error(`${configPath}: peft_type ${JSON.stringify(raw.peft_type)} is not LORA`);
  for (const key of ['use_dora', 'fan_in_fan_out', 'lora_bias'] as const) {
    if (raw[key] === true) throw new Error(`${configPath}: ${key}=true is not supported`);
  }
  if (raw.bias != null && raw.bias !== 'none') throw new Error(`${configPath}: bias "${raw.bias}" is not supported (only "none")`);
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    if (raw[key] && Object.keys(raw[key] as object).length) throw new Error(`${configPath}: ${key} is not supported`);
  }
  if (raw.layers_to_transform != null) throw new Error(`${configPath}: layers_to_transform is not supported`);
  return {
    configPath,
    weightsPath,
    r: Number(raw.r),
    alpha: Number(raw.lora_alpha),
    dropout: Number(raw.lora_dropout ?? 0),
    targetModules: parseTargetModules(raw.target_modules, configPath),
    useRslora: raw.use_rslora === true,
  };
}

/** PEFT accepts a list of module names or a regex matched against full module paths. */
function parseTargetModules(value: unknown, where: string): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') {
    const pattern = new RegExp(`^(?:${value})$`);
    const hit = PROJECTIONS.filter((p) => pattern.test(projectionPath(0, p)) || pattern.test(p));
    if (hit.length === 0) throw new Error(`${where}: target_modules regex ${JSON.stringify(value)} matches no projection`);
    return hit;
  }
  throw new Error(`${where}: target_modules must be a list or a regex string`);
}

/** What adapter_config.json records of a LoRA adapter. */
export type PeftLoraSettings = Pick<PeftAdapterConfig, 'r' | 'alpha' | 'dropout' | 'targetModules' | 'useRslora'>;

