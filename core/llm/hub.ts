// Resolve a model reference to a local checkpoint folder: a folder path, a model in the Hugging Face
// cache (models--ORG--NAME/snapshots/<commit>, the commit named by refs/<revision>), or — when online —
// a Hub id downloaded into that cache with @huggingface/hub.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The hub cache folder, as huggingface_hub computes it: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function huggingFaceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/** Where a Hub id lives in the cache at a revision, or undefined when it is not there. */
export function findInCache(repoId: string, options: { cacheDir?: string; revision?: string } = {}): string | undefined {
  const cacheDir = options.cacheDir ?? huggingFaceCacheDir();
  const revision = options.revision ?? 'main';
  const repoDir = join(cacheDir, `models--${repoId.replace('/', '--')}`);
  if (!existsSync(repoDir)) return undefined;
  const refPath = join(repoDir, 'refs', revision);
  const commit = existsSync(refPath) ? readFileSync(refPath, 'utf8').trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  if (!commit) return undefined;
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(join(snapshot, 'config.json')) ? snapshot : undefined;
}

export async function resolveModelDir(
  ref: string,
  options: { cacheDir?: string; revision?: string; download?: boolean } = {},
): Promise<string> {
  if (existsSync(ref)) {
    if (!statSync(ref).isDirectory()) throw new Error(`model "${ref}" is a file; expected a checkpoint folder with config.json`);
    return ref;
  }
  if (!HUB_ID.test(ref)) throw new Error(`model "${ref}": no such folder, and not a Hub id of the form ORG/NAME`);
  const cacheDir = options.cacheDir ?? huggingFaceCacheDir();
  const cached = findInCache(ref, { cacheDir, revision: options.revision });
  if (cached) return cached;
  if (options.download === false) {
    throw new Error(`model "${ref}": not a local folder and not in the Hugging Face cache at ${cacheDir} (revision ${options.revision ?? 'main'})`);
  }
  const { snapshotDownload } = await import('@huggingface/hub');
  try {
    return await snapshotDownload({ repo: { type: 'model', name: ref }, cacheDir, revision: options.revision, accessToken: process.env.HF_TOKEN });
  } catch (err) {
    throw new Error(`model "${ref}": not in the Hugging Face cache at ${cacheDir}, and downloading it failed: ${(err as Error).message}`);
  }
}
