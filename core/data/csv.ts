// CSV with a header row, parsed by csv-parse as a stream. Values stay strings (CSV has no types).
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import type { DatasetRow } from '../ports.js';
import { DatasetError, rowSource } from './errors.js';

export interface CsvReadOptions {
  delimiter?: string;
}

/** Rows of a `.csv` file (first line = column names); `source` is `file:line` of the record's first line. */
export async function* readCsv(file: string, options: CsvReadOptions = {}): AsyncGenerator<DatasetRow> {
  const parser = createReadStream(file).pipe(
    parse({ columns: true, info: true, bom: true, skip_empty_lines: true, delimiter: options.delimiter ?? ',' }),
  );
  let index = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      // info.lines is the line the record ends on; a record with embedded newlines starts earlier, but
      // the end line still points the user at the right record.
      yield { index: index++, source: rowSource(file, info.lines), data: record };
    }
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    const e = err as Error & { lines?: number };
    throw new DatasetError(e.lines !== undefined ? rowSource(file, e.lines) : file, `invalid CSV (${e.message})`, { cause: err });
  }
}
