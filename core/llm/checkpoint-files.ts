// Where a Hugging Face checkpoint folder keeps its weights (free of tensor code: the GGUF export reads it too).
import { existsSync } from 'node:fs';
import { readJsonFile } from '../runtime/json-file.js';
import { join } from 'node:path';

/** The safetensors files of a checkpoint: the shards of model.safetensors.index.json, or model.safetensors. */
export function checkpointFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (readJsonFile(index) as { weight_map?: Record<string, string> }).weight_map as Record<string, string> | undefined;
    if (!map) throw new Error(`${index}: no "weight_map"`);
    const files = [...new Set(Object.values(map))].map((f) => join(dir, f));
    for (const f of files) if (!existsSync(f)) throw new Error(`${index} names shard ${f}, which is missing`);
    return files;
  }
  const single = join(dir, 'model.safetensors');
  if (!existsSync(single)) throw new Error(`${dir}: missing model.safetensors (or model.safetensors.index.json)`);
  return [single];
}
