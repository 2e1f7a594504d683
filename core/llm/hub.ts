// Resolve a model reference to a local checkpoint folder: a folder path, a model in the Hugging Face
// cache (models--ORG--NAME/snapshots/<commit>, the commit named by refs/<revision>), or — when online —
// a Hub id downloaded into that cache with @huggingface/hub.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { huggingFaceHome, huggingFaceOffline, huggingFaceToken } from '../hf-env.js';

/** The hub cache folder, as huggingface_hub computes it: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function huggingFaceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE ?? join(huggingFaceHome(env), 'hub');
}

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/** Whether `ref` has the form of a Hub id (ORG/NAME). */
export function isHubId(ref: string): boolean {
  return HUB_ID.test(ref);
}

/**
 * Where a Hub id lives in the cache at a revision, or undefined when it is not there. The snapshot must
 * hold `requiredFile` (a model's config.json; a PEFT adapter's adapter_config.json).
 */
export function findInCache(repoId: string, options: { cacheDir?: string; revision?: string; requiredFile?: string } = {}): string | undefined {
  const cacheDir = options.cacheDir ?? huggingFaceCacheDir();
  const revision = options.revision ?? 'main';
  const repoDir = join(cacheDir, `models--${repoId.replace('/', '--')}`);
  if (!existsSync(repoDir)) return undefined;
  const refPath = join(repoDir, 'refs', revision);
  const commit = existsSync(refPath) ? readFileSync(refPath, 'utf8').trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  if (!commit) return undefined;
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(join(snapshot, options.requiredFile ?? 'config.json')) ? snapshot : undefined;
}

/**
 * A local folder for a model reference: the folder itself, else the Hub id's snapshot in the cache, else
 * (unless offline: `download: false` or HF_HUB_OFFLINE) downloaded into the cache with the saved token.
 * `kind` names what is looked for (an adapter's snapshot holds adapter_config.json, not config.json).
 */
export async function resolveModelDir(
  ref: string,
  options: { cacheDir?: string; revision?: string; download?: boolean; kind?: 'model' | 'adapter' } = {},
): Promise<string> {
  const kind = options.kind ?? 'model';
  const requiredFile = kind === 'adapter' ? 'adapter_config.json' : 'config.json';
  if (existsSync(ref)) {
    if (!statSync(ref).isDirectory()) throw new Error(`${kind} "${ref}" is a file; expected a folder with ${requiredFile}`);
    return ref;
  }
  if (!HUB_ID.test(ref)) throw new Error(`${kind} "${ref}": no such folder, and not a Hub id of the form ORG/NAME`);
  const cacheDir = options.cacheDir ?? huggingFaceCacheDir();
  const cached = findInCache(ref, { cacheDir, revision: options.revision, requiredFile });
  if (cached) return cached;
  const offline = options.download === false ? 'offline' : huggingFaceOffline() ? 'offline (HF_HUB_OFFLINE is set)' : undefined;
  if (offline) {
    throw new Error(`${kind} "${ref}": not a local folder and not in the Hugging Face cache at ${cacheDir} (revision ${options.revision ?? 'main'}); ${offline}, so not downloaded`);
  }
  const { snapshotDownload } = await import('@huggingface/hub');
  try {
    return await snapshotDownload({ repo: { type: 'model', name: ref }, cacheDir, revision: options.revision, accessToken: huggingFaceToken() });
  } catch (err) {
    throw new Error(`${kind} "${ref}": not in the Hugging Face cache at ${cacheDir}, and downloading it failed: ${(err as Error).message}`);
  }
}
