// Run outputs: OUT/metrics.jsonl (one `{"step", "node", ...values}` object per line), OUT/events.log,
// OUT/samples.jsonl (the sampled completions the UI shows, for the HTML report) and a TensorBoard event
// file beside them (every metric as the scalar `NODE/NAME`).
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Observable } from 'rxjs';
import type { MetricRecord } from '../ports.js';
import { eventFileName, fileVersionEvent, scalarEvent, tfRecord } from '../report/tfevents.js';
import type { EventRecord } from './metrics-bus.js';

export interface RunWriter {
  /** Resolves once everything received so far is on disk and the file is closed. */
  close(): Promise<void>;
}

function openStream(file: string): WriteStream {
  mkdirSync(path.dirname(file), { recursive: true });
  return createWriteStream(file, { flags: 'w' });
}

/** Writes `header` then `encode(item)` for every item (skipping undefined) until closed. */
function writeEncoded<T>(source$: Observable<T>, file: string, encode: (item: T) => string | Uint8Array | undefined, header?: Uint8Array): RunWriter {
  const stream = openStream(file);
  if (header) stream.write(header);
  const sub = source$.subscribe((item) => {
    const chunk = encode(item);
    if (chunk !== undefined) stream.write(chunk);
  });
  return {
    close: () =>
      new Promise<void>((resolve, reject) => {
        sub.unsubscribe();
        stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
      }),
  };
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

export function writeMetricsJsonl(metrics$: Observable<MetricRecord>, file: string): RunWriter {
  return writeEncoded(metrics$, file, (record) => metricLine(record) + '\n');
}

export function writeEventsLog(events$: Observable<EventRecord>, file: string): RunWriter {
  return writeEncoded(events$, file, (event) => eventLine(event) + '\n');
}

/** The sampled-completion events (data holding `completion`, see core/ui/types.ts) as JSON lines. */
export function sampleLine(event: EventRecord): string | undefined {
  if (typeof event.data?.completion !== 'string') return undefined;
  return JSON.stringify({ time: event.time, node: event.node, ...event.data });
}

export const SAMPLES_FILE = 'samples.jsonl';

export function writeSamplesJsonl(events$: Observable<EventRecord>, file: string): RunWriter {
  return writeEncoded(events$, file, (event) => {
    const line = sampleLine(event);
    return line === undefined ? undefined : line + '\n';
  });
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
    tfRecord(fileVersionEvent(started)),
  );
  return { ...writer, file };
}
