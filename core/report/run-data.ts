// A finished (or running) run's outputs read back from its folder, for the HTML report:
// metrics.jsonl as series by node and name, summary.json, and the sampled completions (samples.jsonl).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SAMPLES_FILE } from '../runtime/writers.js';
import { readSummary, type Summary } from './summary.js';

export const METRICS_FILE = 'metrics.jsonl';

/** Points `[step, value]` in file order; non-finite values (written as strings) are NaN, Infinity, -Infinity. */
export type Series = [number, number][];

export interface SampleRecord {
  step?: number;
  node?: string;
  prompt?: string;
  completion: string;
  rewards?: Record<string, number>;
}

export interface RunData {
  dir: string;
  name: string;
  /** node id → metric name → points. */
  series: Map<string, Map<string, Series>>;
  summary: Summary;
  samples: SampleRecord[];
}

export class RunDataError extends Error {}

/** Parses a JSON-lines file; a bad line is an error naming `file:row`. */
function readJsonLines(file: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new RunDataError(`${file}:${i + 1}: not valid JSON (${(error as Error).message})`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RunDataError(`${file}:${i + 1}: expected a JSON object`);
      rows.push(value as Record<string, unknown>);
    });
  return rows;
}

function metricValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
  return undefined;
}

export async function readRunData(dir: string): Promise<RunData> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunDataError(`${dir}: no such run folder`);
  const metricsFile = path.join(dir, METRICS_FILE);
  if (!existsSync(metricsFile)) throw new RunDataError(`${dir}: no ${METRICS_FILE} (is this a run's output folder?)`);
  const series = new Map<string, Map<string, Series>>();
  readJsonLines(metricsFile).forEach((row, i) => {
    const { step, node } = row;
    if (typeof step !== 'number' || typeof node !== 'string') throw new RunDataError(`${metricsFile}:${i + 1}: a metrics record needs a numeric "step" and a "node"`);
    const byName = series.get(node) ?? new Map<string, Series>();
    series.set(node, byName);
    for (const [name, raw] of Object.entries(row)) {
      const value = name === 'step' || name === 'node' ? undefined : metricValue(raw);
      if (value === undefined) continue;
      const points = byName.get(name) ?? [];
      byName.set(name, points);
      points.push([step, value]);
    }
  });
  let summary: Summary;
  try {
    summary = await readSummary(dir);
  } catch (error) {
    throw new RunDataError((error as Error).message);
  }
  const samplesFile = path.join(dir, SAMPLES_FILE);
  const samples = existsSync(samplesFile)
    ? readJsonLines(samplesFile).flatMap((row): SampleRecord[] =>
        typeof row.completion === 'string'
          ? [
              {
                completion: row.completion,
                ...(typeof row.step === 'number' ? { step: row.step } : {}),
                ...(typeof row.node === 'string' ? { node: row.node } : {}),
                ...(typeof row.prompt === 'string' ? { prompt: row.prompt } : {}),
                ...(row.rewards !== null && typeof row.rewards === 'object' ? { rewards: numericEntries(row.rewards) } : {}),
              },
            ]
          : [],
      )
    : [];
  return { dir, name: path.basename(path.resolve(dir)), series, summary, samples };
}

function numericEntries(value: object): Record<string, number> {
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, number] => typeof e[1] === 'number'));
}
