// The metrics bus: every node publishes named scalars and events here; the JSONL and events writers,
// the plain progress printer and the terminal UI subscribe.
import { Subject, type Observable } from 'rxjs';
import type { EventLevel, MetricsPublisher, MetricValues } from '../plugin.js';
import type { MetricRecord } from '../ports.js';
import { redactDeep, type Redactor } from './redact.js';

export type { MetricRecord };

export interface EventRecord {
  /** Milliseconds since the epoch. */
  time: number;
  /** The node id, or `graph` for the runtime's own events. */
  node: string;
  level: EventLevel;
  message: string;
  data?: Record<string, unknown>;
}

export class MetricsBus {
  private readonly metricsSubject = new Subject<MetricRecord>();
  private readonly eventsSubject = new Subject<EventRecord>();
  readonly metrics$: Observable<MetricRecord> = this.metricsSubject.asObservable();
  readonly events$: Observable<EventRecord> = this.eventsSubject.asObservable();

  /** `redact` keeps `${env.X}` values out of metric names and events (core/runtime/redact.ts). */
  constructor(private readonly redact?: Redactor) {}

  publish(node: string, step: number, values: MetricValues): void {
    this.metricsSubject.next({ step, node, values: this.redact ? redactDeep(values, this.redact) : { ...values } });
  }

  event(node: string, level: EventLevel, message: string, data?: Record<string, unknown>): void {
    const r = this.redact;
    this.eventsSubject.next({
      time: Date.now(),
      node,
      level,
      message: r ? r(message) : message,
      ...(data === undefined ? {} : { data: r ? redactDeep(data, r) : data }),
    });
  }

  /** The publisher handed to node `node` (its id is added to everything it publishes). */
  publisher(node: string): MetricsPublisher {
    return {
      publish: (step, values) => this.publish(node, step, values),
      event: (level, message, data) => this.event(node, level, message, data),
    };
  }

  complete(): void {
    this.metricsSubject.complete();
    this.eventsSubject.complete();
  }
}
