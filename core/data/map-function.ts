// A map function from a user's module: `export default (data, row) => PromptRecord-like`.
// The record may omit `id` (the row index is used) and `fields` (empty); returning null drops the row.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChatMessage, DatasetRow, PromptRecord } from '../ports.js';
import { DatasetError, isPlainObject } from './errors.js';

export type UserMapFunction = (
  data: Record<string, unknown>,
  row: DatasetRow,
) => { id?: string; messages: ChatMessage[]; fields?: Record<string, unknown> } | null | undefined;

export type AsyncRowMapper = (row: DatasetRow) => Promise<PromptRecord | null>;

/** Import `file` (relative to `baseDir`), take its default export (or `map`), and wrap it with checks. */
export async function loadMapFunction(file: string, baseDir: string): Promise<AsyncRowMapper> {
  const path = resolve(baseDir, file);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    throw new Error(`map function ${path}: cannot import (${(err as Error).message})`, { cause: err });
  }
  const fn = (mod.default ?? mod.map) as unknown;
  if (typeof fn !== 'function') throw new Error(`map function ${path}: export a function as default (or as "map")`);
  return async (row) => {
    let out: unknown;
    try {
      out = await (fn as UserMapFunction)(row.data, row);
    } catch (err) {
      throw new DatasetError(row.source, `map function ${file} threw: ${(err as Error).message}`, { cause: err });
    }
    if (out === null || out === undefined) return null;
    return checkRecord(row, file, out);
  };
}

function checkRecord(row: DatasetRow, file: string, out: unknown): PromptRecord {
  const bad = (what: string) => new DatasetError(row.source, `map function ${file} returned ${what}`);
  if (!isPlainObject(out)) throw bad('something that is not an object');
  const { id, messages, fields } = out;
  if (!Array.isArray(messages) || messages.length === 0) throw bad('no "messages" array');
  for (const m of messages) {
    if (!isPlainObject(m) || typeof m.role !== 'string' || typeof m.content !== 'string') throw bad('a message that is not {role: string, content: string}');
  }
  if (fields !== undefined && !isPlainObject(fields)) throw bad('"fields" that is not an object');
  if (id !== undefined && typeof id !== 'string') throw bad('an "id" that is not a string');
  return {
    id: id ?? String(row.index),
    messages: (messages as ChatMessage[]).map((m) => ({ role: m.role, content: m.content })),
    fields: (fields as Record<string, unknown> | undefined) ?? {},
  };
}
