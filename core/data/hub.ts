// A dataset on the Hugging Face Hub, by id (`openai/gsm8k`). Files go to the standard HF cache
// (HF_HUB_CACHE / HF_HOME, shared with Python), so a dataset already downloaded there is read offline.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { downloadFileToCacheDir, getHFHubCachePath, getRepoFolderName, listFiles } from '@huggingface/hub';
import type { DatasetRow } from '../ports.js';
import { huggingFaceOffline, huggingFaceToken } from '../hf-env.js';
import { DatasetError } from './errors.js';
import { formatFromExtension } from './file-format.js';
import { readHfFolder } from './hf-folder.js';

export interface HubDatasetOptions {
  split: string;
  config?: string;
  /** Branch, tag or commit. Default `main`. */
  revision?: string;
  /** Default: the HF hub cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Never touch the network; fail when the dataset is not in the cache. Also on when HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
  /** Default: HF_TOKEN, else the token `huggingface-cli login` saved. */
  accessToken?: string;
}

/**
 * The cached snapshot folder of a dataset repo at a revision, or undefined when it is not cached.
 * Layout: `<cache>/datasets--owner--name/refs/<revision>` holds the commit; the files are under
 * `snapshots/<commit>/`.
 */
export function cachedDatasetSnapshot(id: string, options: { revision?: string; cacheDir?: string } = {}): string | undefined {
  const repoDir = join(options.cacheDir ?? getHFHubCachePath(), getRepoFolderName({ name: id, type: 'dataset' }));
  const revision = options.revision ?? 'main';
  const refFile = join(repoDir, 'refs', revision);
  const commit = existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : revision;
  const snapshot = join(repoDir, 'snapshots', commit);
  return existsSync(snapshot) ? snapshot : undefined;
}

/** Download (if needed) the data files of one configuration of a Hub dataset; returns the snapshot folder. */
export async function downloadHubDataset(id: string, options: Omit<HubDatasetOptions, 'split'>): Promise<string> {
  const repo = { type: 'dataset' as const, name: id };
  const accessToken = options.accessToken ?? huggingFaceToken();
  const credentials = accessToken ? { accessToken } : {};
  let snapshot: string | undefined;
  try {
    for await (const entry of listFiles({ repo, recursive: true, revision: options.revision, ...credentials })) {
      if (entry.type !== 'file' || !formatFromExtension(entry.path)) continue;
      if (options.config !== undefined && !entry.path.startsWith(`${options.config}/`)) continue;
      const local = await downloadFileToCacheDir({ repo, path: entry.path, revision: options.revision, cacheDir: options.cacheDir, ...credentials });
      snapshot ??= local.slice(0, local.length - entry.path.length - 1);
    }
  } catch (err) {
    throw new DatasetError(`hub:${id}`, `download failed (${(err as Error).message}); offline? Put the dataset in the HF cache or point "path" at a local copy`, { cause: err });
  }
  if (snapshot === undefined) throw new DatasetError(`hub:${id}`, `no data files (.parquet, .jsonl, .json, .csv)${options.config ? ` under "${options.config}/"` : ''}`);
  return snapshot;
}

/** Rows of one split of a Hub dataset, from the cache when present, else downloaded first. */
export async function* readHubDataset(id: string, options: HubDatasetOptions): AsyncGenerator<DatasetRow> {
  const offline = options.offline ?? huggingFaceOffline();
  let snapshot = cachedDatasetSnapshot(id, options);
  if (snapshot === undefined) {
    if (offline) throw new DatasetError(`hub:${id}`, `not in the HF cache (${options.cacheDir ?? getHFHubCachePath()}) and offline`);
    snapshot = await downloadHubDataset(id, options);
  }
  yield* readHfFolder(snapshot, options.split, { config: options.config });
}
