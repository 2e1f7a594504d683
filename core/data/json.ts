// A whole-file JSON dataset: either a top-level array of objects, or an object holding that array under
// one key (`{"data": [...]}`, `{"rows": [...]}`; `field` picks the key, else the object's only array).
import { readFile } from 'node:fs/promises';
import type { DatasetRow } from '../ports.js';
import { DatasetError, isPlainObject, rowSource } from './errors.js';
import { describe } from './jsonl.js';

export interface JsonReadOptions {
  /** The key of the rows array when the file is an object. Default: the object's only array-valued key. */
  field?: string;
}

/** Rows of a `.json` file; `source` is `file:N` with N the 1-based position in the array. */
export async function* readJson(file: string, options: JsonReadOptions = {}): AsyncGenerator<DatasetRow> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new DatasetError(file, `invalid JSON (${(err as Error).message})`, { cause: err });
  }
  const items = rowsArray(file, parsed, options.field);
  for (let i = 0; i < items.length; i++) {
    const source = rowSource(file, i + 1);
    const item = items[i];
    if (!isPlainObject(item)) throw new DatasetError(source, `expected a JSON object, got ${describe(item)}`);
    yield { index: i, source, data: item };
  }
}

function rowsArray(file: string, parsed: unknown, field: string | undefined): unknown[] {
  if (Array.isArray(parsed)) {
    if (field !== undefined) throw new DatasetError(file, `field "${field}" was given but the file is a top-level array`);
    return parsed;
  }
  if (!isPlainObject(parsed)) throw new DatasetError(file, `expected an array of objects or an object holding one, got ${describe(parsed)}`);
  if (field !== undefined) {
    const value = parsed[field];
    if (!Array.isArray(value)) throw new DatasetError(file, `field "${field}" is not an array (keys: ${Object.keys(parsed).join(', ')})`);
    return value;
  }
  const arrayKeys = Object.keys(parsed).filter((k) => Array.isArray(parsed[k]));
  if (arrayKeys.length !== 1) {
    throw new DatasetError(
      file,
      arrayKeys.length === 0
        ? 'the object holds no array of rows'
        : `the object holds several arrays (${arrayKeys.join(', ')}); say which with "field"`,
    );
  }
  return parsed[arrayKeys[0]] as unknown[];
}
