// A dataset laid out as on the Hugging Face Hub, on local disk. Splits are found from file names, the way
// the `datasets` library does for repos without a loading script:
//   data/train-00000-of-00001.parquet     main/train-00000-of-00002.parquet     train.jsonl
//   data/test.csv                          <config>/test-*.parquet               data/train/0000.parquet
// A file belongs to the split whose name starts its base name (up to `-` or `.`), or, under data/,
// to the split folder it sits in.
import { readdirSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import type { DatasetRow } from '../ports.js';
import { DatasetError } from './errors.js';
import { formatFromExtension, readDatasetFiles } from './file-format.js';

export interface HfFolderOptions {
  /** The configuration (sub-folder such as `main` or `socratic` for GSM8K). Default: the only one, or `data`/top level. */
  config?: string;
}

/** Split name → its data files (sorted, so shards read in order), for one configuration of the folder. */
export function resolveHfSplits(dir: string, options: HfFolderOptions = {}): Record<string, string[]> {
  const files = listDataFiles(dir);
  if (files.length === 0) throw new DatasetError(dir, 'no dataset files (.parquet, .jsonl, .json, .csv) in this folder');
  const byConfig = new Map<string, string[]>();
  for (const file of files) {
    const parts = relative(dir, file).split(sep);
    // Top-level files and those under data/ form the default configuration, named ''.
    const config = parts.length === 1 || parts[0] === 'data' ? '' : parts[0];
    byConfig.set(config, [...(byConfig.get(config) ?? []), file]);
  }
  const config = pickConfig(dir, byConfig, options.config);
  const splits: Record<string, string[]> = {};
  for (const file of byConfig.get(config) ?? []) {
    const parts = relative(dir, file).split(sep);
    const split = parts.length === 3 && parts[0] === 'data' ? parts[1] : splitOfFile(file);
    if (split === undefined) continue;
    (splits[split] ??= []).push(file);
  }
  if (Object.keys(splits).length === 0) throw new DatasetError(dir, `no file names a split (expected names like train-00000-of-00001.parquet or test.jsonl)`);
  for (const list of Object.values(splits)) list.sort();
  return splits;
}

/** Rows of one split of a local Hugging Face dataset folder. */
export function readHfFolder(dir: string, split: string, options: HfFolderOptions = {}): AsyncGenerator<DatasetRow> {
  const splits = resolveHfSplits(dir, options);
  const files = splits[split];
  if (!files) throw new DatasetError(dir, `no split "${split}" (found: ${Object.keys(splits).sort().join(', ')})`);
  return readDatasetFiles(files);
}

const SPLIT_NAME = /^([A-Za-z][A-Za-z0-9_]*?)(?:[-.].*)?\.[^.]+$/;

function splitOfFile(file: string): string | undefined {
  const match = SPLIT_NAME.exec(basename(file));
  return match?.[1];
}

function pickConfig(dir: string, byConfig: Map<string, string[]>, wanted: string | undefined): string {
  const configs = [...byConfig.keys()];
  if (wanted !== undefined) {
    if (!byConfig.has(wanted)) throw new DatasetError(dir, `no configuration "${wanted}" (found: ${configs.map(nameOf).join(', ')})`);
    return wanted;
  }
  if (byConfig.has('')) return '';
  if (configs.length === 1) return configs[0];
  throw new DatasetError(dir, `several configurations (${configs.map(nameOf).join(', ')}); choose one with "config"`);
}

function nameOf(config: string): string {
  return config === '' ? '(default)' : config;
}

function listDataFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (folder: string, depth: number) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = join(folder, entry.name);
      if (entry.isDirectory() && depth < 2) walk(full, depth + 1);
      else if ((entry.isFile() || (entry.isSymbolicLink() && statSync(full).isFile())) && formatFromExtension(entry.name)) found.push(full);
    }
  };
  walk(dir, 0);
  return found;
}
