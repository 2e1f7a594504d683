// One entry point for reading a dataset file: picks the reader from the format or the file extension.
import { extname } from 'node:path';
import type { DatasetRow } from '../ports.js';
import { readCsv } from './csv.js';
import { DatasetError } from './errors.js';
import { readJson } from './json.js';
import { readJsonl } from './jsonl.js';
import { readParquet } from './parquet.js';

export const FILE_FORMATS = ['jsonl', 'json', 'csv', 'parquet'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

const EXTENSIONS: Record<string, FileFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.parquet': 'parquet',
};

/** The format a file name implies, or undefined when the extension is not a dataset format. */
export function formatFromExtension(file: string): FileFormat | undefined {
  return EXTENSIONS[extname(file).toLowerCase()];
}

export interface ReadFileOptions {
  /** Overrides the extension. */
  format?: FileFormat;
  /** For JSON files that are an object: the key holding the rows array. */
  jsonField?: string;
  csvDelimiter?: string;
}

export function readDatasetFile(file: string, options: ReadFileOptions = {}): AsyncGenerator<DatasetRow> {
  const format = options.format ?? formatFromExtension(file);
  switch (format) {
    case 'jsonl':
      return readJsonl(file);
    case 'json':
      return readJson(file, { field: options.jsonField });
    case 'csv':
      return readCsv(file, { delimiter: options.csvDelimiter });
    case 'parquet':
      return readParquet(file);
    default:
      throw new DatasetError(file, `cannot tell the dataset format from the extension "${extname(file)}"; set format to one of ${FILE_FORMATS.join(', ')}`);
  }
}

/** Rows of several files read one after another, re-indexed from 0 (the shards of one split). */
export async function* readDatasetFiles(files: string[], options: ReadFileOptions = {}): AsyncGenerator<DatasetRow> {
  let index = 0;
  for (const file of files) {
    for await (const row of readDatasetFile(file, options)) yield { ...row, index: index++ };
  }
}
