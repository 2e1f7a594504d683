// User reward functions from a .ts/.js module: `(args) => number[]` as the default or a named export.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { access } from 'node:fs/promises';
import type { RewardFunction } from '../../ports.js';

export interface LoadRewardOptions {
  /** Defaults to the export name, or the file's base name for a default export. */
  name?: string;
  weight?: number;
  onError?: RewardFunction['onError'];
}

export async function loadRewardModule(path: string, exportName?: string, options: LoadRewardOptions = {}): Promise<RewardFunction> {
  const absolute = resolve(path);
  try {
    await access(absolute);
  } catch {
    throw new Error(`reward module ${path}: file not found (resolved to ${absolute})`);
  }
  // .ts modules load because the project runs under tsx, which hooks import().
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`reward module ${path}: failed to import: ${(error as Error).message}`);
  }
  const key = exportName ?? 'default';
  const exported = module[key];
  if (exported === undefined) {
    const available = Object.keys(module).join(', ') || 'none';
    throw new Error(`reward module ${path}: no export "${key}" (exports: ${available})`);
  }
  // A module may export a whole RewardFunction object, or just the scoring function.
  const score =
    typeof exported === 'function'
      ? (exported as RewardFunction['score'])
      : typeof exported === 'object' && exported !== null && typeof (exported as RewardFunction).score === 'function'
        ? (exported as RewardFunction).score.bind(exported)
        : undefined;
  if (!score) throw new Error(`reward module ${path}: export "${key}" is ${typeof exported}, expected a function (args) => number[]`);
  const baseName = absolute.replace(/^.*[\\/]/, '').replace(/\.[^.]+$/, '');
  return {
    name: options.name ?? (exportName ?? baseName),
    weight: options.weight ?? 1,
    onError: options.onError ?? 'fail',
    score,
  };
}
