// The run summary, OUT/summary.json: a JSON object that several nodes fill in (the evaluation node its
// before/after results, the trainer its step count, the `run` command the wall time). Each update is a
// read-modify-write written atomically (temporary file, then rename); updates from one process are
// queued per file so two nodes finishing together never lose each other's fields.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../grpo/checkpoint.js';

export const SUMMARY_FILE = 'summary.json';

export type Summary = Record<string, unknown>;

const queues = new Map<string, Promise<unknown>>();

export function summaryPath(outDir: string): string {
  return resolve(join(outDir, SUMMARY_FILE));
}

/** The summary as it stands ({} when there is none yet). */
export async function readSummary(outDir: string): Promise<Summary> {
  const path = summaryPath(outDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new Error(`${path} must hold a JSON object`);
  return parsed;
}

/** The summary as it stands, read synchronously; {} when there is none or it cannot be read. */
export function readSummarySync(outDir: string): Summary {
  try {
    const parsed: unknown = JSON.parse(readFileSync(summaryPath(outDir), 'utf8'));
    return isPlainObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Applies `update` to the current summary and writes the result atomically; returns what was written. */
export function updateSummary(outDir: string, update: (current: Summary) => Summary): Promise<Summary> {
  const path = summaryPath(outDir);
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(async () => {
      const updated = update(await readSummary(outDir));
      await writeFileAtomic(path, JSON.stringify(updated, null, 2) + '\n');
      return updated;
    });
  queues.set(path, next);
  // Drop the queue entry once idle, so a long-lived process does not keep one per folder.
  void next.finally(() => {
    if (queues.get(path) === next) queues.delete(path);
  }).catch(() => undefined);
  return next;
}

/** Deep-merges `patch` into the summary (objects merge key by key; anything else replaces). */
export function mergeSummary(outDir: string, patch: Summary): Promise<Summary> {
  return updateSummary(outDir, (current) => deepMerge(current, patch));
}

export function deepMerge(base: Summary, patch: Summary): Summary {
  const out: Summary = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const existing = out[key];
    out[key] = isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
