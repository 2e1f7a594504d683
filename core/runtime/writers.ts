// Run outputs: OUT/metrics.jsonl (one `{"step", "node", ...values}` object per line), OUT/events.log,
// OUT/samples.jsonl (the sampled completions the UI shows, for the HTML report) and a TensorBoard event
// file beside them (every metric as the scalar `NODE/NAME`).
//
// Lines are written synchronously as they arrive (a few per step), so a killed process loses nothing it
// had published. A resumed run (`--resume`) continues the files of the run it resumes instead of
// starting them again:
// - metrics.jsonl: the steps after the checkpoint are done again, so their old records must not stay
//   beside the new ones. Each node counts its own steps (the trainer optimiser steps, the generator
//   batches, ...), so the writer learns where a node starts again from the first record it publishes
//   after the resume: the old records of that node at that step and later are dropped (the file is
//   rewritten atomically, once per such node), everything else is kept.
// - events.log: the entries after the resumed checkpoint's own `checkpoint ... (step N)` entry are the
//   steps done again; of those only the run-level entries (node `graph`) and warnings/errors stay (they
//   say how the segment ended), then the new run appends.
// - samples.jsonl is appended to (a batch done again after the resume has its sample twice, by time);
//   TensorBoard gets a new event file per segment in the same folder (TensorBoard reads them together).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Observable } from 'rxjs';
import type { MetricRecord } from '../ports.js';
import { eventFileName, fileVersionEvent, scalarEvent, tfRecord } from '../report/tfevents.js';
import { fileError } from './file-error.js';
import type { EventRecord } from './metrics-bus.js';

export interface RunWriter {
  /** Resolves once everything received so far is on disk and the file is closed. */
  close(): Promise<void>;
}

/** Where a resumed run continues: the step of the checkpoint it starts from. */
export interface ResumePoint {
  step: number;
}

/** An append-only text file written line by line, which can be replaced atomically by a new content. */
class LineFile {
  private fd: number;
  /** `initial`: the file's new content (then appended to); `append`: keep what the file holds. */
  constructor(private readonly file: string, options: { initial?: string; append?: boolean } = {}) {
    mkdirSync(path.dirname(file), { recursive: true });
    if (options.initial !== undefined) this.writeAtomically(options.initial);
    this.fd = openSync(file, options.initial === undefined && !options.append ? 'w' : 'a');
  }

  append(data: string | Uint8Array): void {
    if (typeof data === 'string') writeSync(this.fd, data);
    else writeSync(this.fd, data);
  }

  /** Replaces the whole file (temporary file, then rename: a kill leaves the old content or the new). */
  replace(text: string): void {
    closeSync(this.fd);
    this.writeAtomically(text);
    this.fd = openSync(this.file, 'a');
  }

  private writeAtomically(text: string): void {
    // Named as checkpoint.ts names its temporaries, so a next run removes one a kill left behind.
    const temp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(temp, text);
    renameSync(temp, this.file);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/**
 * Writes every item; a failed write (disk full, ...) is reported once on stderr naming the file, later
 * items are dropped, and close() rejects with that error, so the run ends with exit 1 instead of an
 * uncaught exception from inside the stream.
 */
function subscribeWriter<T>(source$: Observable<T>, file: string, write: (item: T) => void, close: () => void): RunWriter {
  let failed: Error | undefined;
  const sub = source$.subscribe((item) => {
    if (failed) return;
    try {
      write(item);
    } catch (error) {
      failed = fileError(error, file);
      process.stderr.write(`${failed.message}: the run's record stops here\n`);
    }
  });
  return {
    close: async () => {
      sub.unsubscribe();
      try {
        close();
      } catch (error) {
        failed ??= fileError(error, file);
      }
      if (failed) throw failed;
    },
  };
}

/** Writes `header` then `encode(item)` for every item (skipping undefined) until closed. */
function writeEncoded<T>(
  source$: Observable<T>,
  file: string,
  encode: (item: T) => string | Uint8Array | undefined,
  options: { header?: Uint8Array; initial?: string; append?: boolean } = {},
): RunWriter {
  const out = new LineFile(file, options);
  if (options.header) out.append(options.header);
  return subscribeWriter(
    source$,
    file,
    (item) => {
      const chunk = encode(item);
      if (chunk !== undefined) out.append(chunk);
    },
    () => out.close(),
  );
}

export function metricLine(record: MetricRecord): string {
  const line: Record<string, unknown> = { step: record.step, node: record.node };
  for (const [name, value] of Object.entries(record.values)) {
    // `step` and `node` identify the record; JSON has no NaN/Infinity, so those are written as strings.
    if (name === 'step' || name === 'node') continue;
    line[name] = Number.isFinite(value) ? value : String(value);
  }
  return JSON.stringify(line);
}

export function eventLine(event: EventRecord): string {
  const data = event.data === undefined ? '' : ' ' + JSON.stringify(event.data);
  return `${new Date(event.time).toISOString()} ${event.level.toUpperCase().padEnd(5)} [${event.node}] ${event.message}${data}`;
}

interface KeyedLine {
  node?: string;
  step?: number;
  line: string;
}

function parseMetricLine(line: string): KeyedLine {
  try {
    const parsed = JSON.parse(line) as { node?: unknown; step?: unknown };
    return { line, ...(typeof parsed.node === 'string' ? { node: parsed.node } : {}), ...(typeof parsed.step === 'number' ? { step: parsed.step } : {}) };
  } catch {
    return { line }; // kept as it was: not ours to judge
  }
}

export function writeMetricsJsonl(metrics$: Observable<MetricRecord>, file: string, resume?: ResumePoint): RunWriter {
  const previous = resume ? readIfExists(file) : undefined;
  if (previous === undefined) return writeEncoded(metrics$, file, (record) => metricLine(record) + '\n');
  // Every line (old and new) stays in memory so the file can be rewritten when a node restarts.
  let lines: KeyedLine[] = previous.split('\n').filter((l) => l.length > 0).map(parseMetricLine);
  const out = new LineFile(file, { initial: lines.map((l) => l.line + '\n').join('') });
  const restarted = new Set<string>();
  return subscribeWriter(
    metrics$,
    file,
    (record) => {
      if (!restarted.has(record.node)) {
        restarted.add(record.node);
        const redone = (l: KeyedLine) => l.node === record.node && l.step !== undefined && l.step >= record.step;
        if (lines.some(redone)) {
          lines = lines.filter((l) => !redone(l));
          out.replace(lines.map((l) => l.line + '\n').join(''));
        }
      }
      const line = metricLine(record);
      lines.push({ node: record.node, step: record.step, line });
      out.append(line + '\n');
    },
    () => out.close(),
  );
}

const ENTRY_START = /^\d{4}-\d\d-\d\dT[\d:.]+Z /;
const ENTRY_HEAD = /^\S+ (\w+)\s+\[([^\]]*)\] (.*)$/;

/** Splits an events log into entries (an entry's message may span several lines: the eval table). */
export function eventEntries(text: string): string[] {
  const entries: string[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (ENTRY_START.test(line) || entries.length === 0) entries.push(line);
    else entries[entries.length - 1] += '\n' + line;
  }
  return entries;
}

/** The events log of a run resumed from the checkpoint at `step` (see the top of this file). */
export function eventsBeforeResume(text: string, step: number): string[] {
  const entries = eventEntries(text);
  const written = new RegExp(`^checkpoint .*checkpoint-${step} \\(step ${step}\\)`);
  let last = -1;
  entries.forEach((entry, i) => {
    const head = ENTRY_HEAD.exec(entry.split('\n')[0]);
    if (head && written.test(head[3])) last = i;
  });
  if (last < 0) return entries; // not this run's checkpoint (or not found): keep everything
  return entries.filter((entry, i) => {
    if (i <= last) return true;
    const head = ENTRY_HEAD.exec(entry.split('\n')[0]);
    return head !== null && (head[2] === 'graph' || head[1] === 'WARN' || head[1] === 'ERROR');
  });
}

export function writeEventsLog(events$: Observable<EventRecord>, file: string, resume?: ResumePoint): RunWriter {
  const previous = resume ? readIfExists(file) : undefined;
  const initial = previous === undefined ? undefined : eventsBeforeResume(previous, resume!.step).map((e) => e + '\n').join('');
  return writeEncoded(events$, file, (event) => eventLine(event) + '\n', { initial });
}

/** The sampled-completion events (data holding `completion`, see core/ui/types.ts) as JSON lines. */
export function sampleLine(event: EventRecord): string | undefined {
  if (typeof event.data?.completion !== 'string') return undefined;
  return JSON.stringify({ time: event.time, node: event.node, ...event.data });
}

export const SAMPLES_FILE = 'samples.jsonl';

export function writeSamplesJsonl(events$: Observable<EventRecord>, file: string, resume?: ResumePoint): RunWriter {
  return writeEncoded(
    events$,
    file,
    (event) => {
      const line = sampleLine(event);
      return line === undefined ? undefined : line + '\n';
    },
    { append: resume !== undefined },
  );
}

/** The TensorBoard scalars of one metric record: `NODE/NAME` for each value (NaN and ±Inf kept, as floats). */
export function tensorBoardScalars(record: MetricRecord): Record<string, number> {
  return Object.fromEntries(Object.entries(record.values).map(([name, value]) => [`${record.node}/${name}`, value]));
}

/**
 * A TensorBoard event file in `dir` (`tensorboard --logdir runs/` shows each run), one Event per
 * metric record, stamped with the time it arrived. Returns the writer and the file's path.
 */
export function writeTensorBoardEvents(metrics$: Observable<MetricRecord>, dir: string, now: () => number = Date.now): RunWriter & { file: string } {
  const started = now() / 1000;
  const file = path.join(dir, eventFileName(started, os.hostname(), process.pid));
  const writer = writeEncoded(
    metrics$,
    file,
    (record) => tfRecord(scalarEvent({ wallTime: now() / 1000, step: record.step, scalars: tensorBoardScalars(record) })),
    { header: tfRecord(fileVersionEvent(started)) },
  );
  return { ...writer, file };
}
