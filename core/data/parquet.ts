// Parquet via hyparquet, read one row group at a time so a large file is never decoded whole.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { DatasetRow } from '../ports.js';
import { DatasetError, rowSource } from './errors.js';

/** Rows of a `.parquet` file; `source` is `file:N` with N the 1-based row number. */
export async function* readParquet(file: string): AsyncGenerator<DatasetRow> {
  let buffer, metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw new DatasetError(file, `not a readable parquet file (${(err as Error).message})`, { cause: err });
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd });
    for (let i = 0; i < rows.length; i++) {
      const index = rowStart + i;
      yield { index, source: rowSource(file, index + 1), data: toPlain(rows[i]) as Record<string, unknown> };
    }
    rowStart = rowEnd;
  }
}

/** Parquet INT64 columns decode to bigint; rows must stay JSON-friendly for mapping and logging. */
function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}
