// JSON Lines: one JSON object per line, read as a stream so large files never sit in memory whole.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { DatasetRow } from '../ports.js';
import { DatasetError, isPlainObject, rowSource } from './errors.js';

/** Rows of a `.jsonl` file; `source` is `file:line` (1-based). Blank lines are skipped. */
export async function* readJsonl(file: string): AsyncGenerator<DatasetRow> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  let index = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const source = rowSource(file, lineNo);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new DatasetError(source, `invalid JSON (${(err as Error).message})`, { cause: err });
      }
      if (!isPlainObject(value)) throw new DatasetError(source, `expected a JSON object, got ${describe(value)}`);
      yield { index: index++, source, data: value };
    }
  } finally {
    lines.close();
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
