// Run outputs: OUT/metrics.jsonl (one `{"step", "node", ...values}` object per line) and OUT/events.log.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Observable } from 'rxjs';
import type { MetricRecord } from '../ports.js';
import type { EventRecord } from './metrics-bus.js';

export interface RunWriter {
  /** Resolves once everything received so far is on disk and the file is closed. */
  close(): Promise<void>;
}

function openStream(file: string): WriteStream {
  mkdirSync(path.dirname(file), { recursive: true });
  return createWriteStream(file, { flags: 'w' });
}

function writeLines<T>(source$: Observable<T>, file: string, format: (item: T) => string): RunWriter {
  const stream = openStream(file);
  const sub = source$.subscribe((item) => stream.write(format(item) + '\n'));
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
  return writeLines(metrics$, file, metricLine);
}

export function writeEventsLog(events$: Observable<EventRecord>, file: string): RunWriter {
  return writeLines(events$, file, eventLine);
}
