// dataset.load: raw rows from a local file, a local Hugging Face dataset folder, or a Hub dataset id.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { emitLazily } from '../core/data/emit.js';
import { FILE_FORMATS, readDatasetFile } from '../core/data/file-format.js';
import { readHfFolder } from '../core/data/hf-folder.js';
import { readHubDataset } from '../core/data/hub.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

export const datasetLoadConfig = z
  .strictObject({
    // null counts as absent, so a graph can switch between the two with params (`--set data_hub=null`).
    path: z.string().nullish().describe('A dataset file (.jsonl, .json, .csv, .parquet) or a Hugging Face dataset folder, relative to the graph file.'),
    hub: z.string().nullish().describe('A Hub dataset id (owner/name), read from the HF cache or downloaded.'),
    format: z.enum(['auto', ...FILE_FORMATS]).default('auto').describe('File format; auto = by extension.'),
    split: z.string().default('train').describe('The split to read from a dataset folder or Hub dataset.'),
    config: z.string().optional().describe('The dataset configuration (sub-folder), e.g. "main" for GSM8K.'),
    revision: z.string().optional().describe('Hub branch, tag or commit (default main).'),
    field: z.string().optional().describe('For a JSON object file: the key holding the rows array.'),
    delimiter: z.string().optional().describe('CSV delimiter (default ",").'),
  })
  .refine((c) => (c.path == null) !== (c.hub == null), { message: 'give exactly one of "path" or "hub"' });

export const datasetLoad = defineNode({
  type: 'dataset.load',
  version: 1,
  description: 'Reads dataset rows from a JSONL/JSON/CSV/Parquet file, a local Hugging Face dataset folder, or a Hub dataset id.',
  inputs: {},
  outputs: { rows: { type: ports.rows, description: 'The rows, each with its source (file:row) for error messages.' } },
  config: datasetLoadConfig,
  run(ctx) {
    const c = ctx.config;
    const rows = () => {
      if (c.hub != null) return readHubDataset(c.hub, { split: c.split, config: c.config, revision: c.revision });
      const path = resolve(ctx.baseDir, c.path!);
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
      } catch {
        throw new Error(`dataset.load ${ctx.id}: no such file or folder: ${path}`);
      }
      if (isDir) return readHfFolder(path, c.split, { config: c.config });
      return readDatasetFile(path, { format: c.format === 'auto' ? undefined : c.format, jsonField: c.field, csvDelimiter: c.delimiter });
    };
    const source = c.hub != null ? `Hub dataset ${c.hub} (split ${c.split})` : resolve(ctx.baseDir, c.path!);
    return { rows: emitLazily(ctx, () => nonEmpty(rows(), `dataset.load ${ctx.id}: ${source} holds no rows`)) };
  },
});

/** The rows of `source`, failing with `message` when there are none (an empty file would otherwise stall the run). */
async function* nonEmpty<T>(source: AsyncIterable<T> | Iterable<T>, message: string): AsyncGenerator<T> {
  let any = false;
  for await (const row of source) {
    any = true;
    yield row;
  }
  if (!any) throw new Error(message);
}
