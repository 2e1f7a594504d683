// The decoder-only families we run: one file each (llama.ts, mistral.ts, qwen2.ts, qwen3.ts), declaring
// how its config differs from the shared decoder block. Plugins add families the same way
// (`definePlugin({ architectures: [...] })`), registered here for every loader in the process.
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import type { ArchitectureDefinition, ArchitectureTraits } from './types.js';

export type { ArchitectureDefinition, ArchitectureTraits } from './types.js';

const registered = new Map<string, { def: ArchitectureDefinition; origin: string }>([llama, mistral, qwen2, qwen3].map((def) => [def.name, { def, origin: 'core' }]));

/** The traits of a known family, by architecture name. */
export function architectureTraits(name: string): ArchitectureTraits | undefined {
  return registered.get(name)?.def;
}

/** Adds a family (a plugin's); a name already known is an error that names both origins. */
export function registerArchitecture(def: ArchitectureDefinition, origin: string): void {
  const existing = registered.get(def.name);
  if (existing && existing.def !== def) throw new Error(`architecture ${def.name} from ${origin} is already registered by ${existing.origin}`);
  registered.set(def.name, { def, origin });
}

/** Every known family with where it came from. */
export function listArchitectures(): { def: ArchitectureDefinition; origin: string }[] {
  return [...registered.values()];
}

/** The architecture named by a config.json (`architectures[0]`, else its `model_type`). */
export function resolveArchitecture(raw: Record<string, unknown>, where: string): { name: string; traits: ArchitectureTraits } {
  const listed = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]).map(String) : [];
  for (const name of listed) {
    const found = registered.get(name);
    if (found) return { name, traits: found.def };
  }
  const byType = [...registered.values()].find(({ def }) => def.modelType === raw.model_type);
  if (byType && listed.length === 0) return { name: byType.def.name, traits: byType.def };
  const what = listed.length ? listed.join(', ') : `model_type ${JSON.stringify(raw.model_type)}`;
  const all = [...registered.values()].map(({ def }) => def);
  throw new Error(`${where}: unsupported architecture ${what}; supported: ${all.map((d) => d.name).join(', ')} (model_type ${all.map((d) => d.modelType).join(', ')})`);
}
