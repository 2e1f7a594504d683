// A bounded channel backs one stream edge. The producer side pushes (RxJS cannot refuse a value, so
// the bound is kept upstream: the producer's gate closes while this channel is full). The consumer
// side is a pull-based Observable: one item at a time, the next only after the previous `next()`
// returned and any hold (see delivery.ts) was released, and only while the consumer's own gate is open.
import { Observable, type Subscriber } from 'rxjs';
import { deliverPulled } from './delivery.js';
import { OPEN_GATE, type OutputGate } from './gate.js';

export interface ChannelStats {
  pushed: number;
  delivered: number;
  depth: number;
  capacity: number;
}

export class BoundedChannel<T> {
  private readonly queue: T[] = [];
  private completed = false;
  private failure: { error: unknown } | undefined;
  private subscriber: Subscriber<T> | undefined;
  private subscribed = false;
  private delivering = false;
  private held = false;
  private closed = false;
  private pushed = 0;
  private delivered = 0;
  /** The producer's gate, told when room appears. */
  private producerGate: OutputGate | undefined;
  private readonly changeListeners = new Set<(stats: ChannelStats) => void>();

  constructor(
    readonly capacity: number,
    /** For messages: `producer.port -> consumer.port`. */
    readonly label = 'channel',
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`${label}: buffer must be a positive integer, got ${capacity}`);
  }

  attachProducerGate(gate: OutputGate): void {
    this.producerGate = gate;
    gate.addChannel(this);
  }

  isFull(): boolean {
    return !this.closed && this.queue.length >= this.capacity;
  }

  /** The consumer subscribed and then left: nothing pushed here will be read. */
  isAbandoned(): boolean {
    return this.abandoned;
  }

  private abandoned = false;

  get depth(): number {
    return this.queue.length;
  }

  stats(): ChannelStats {
    return { pushed: this.pushed, delivered: this.delivered, depth: this.queue.length, capacity: this.capacity };
  }

  onChange(listener: (stats: ChannelStats) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  push(item: T): void {
    if (this.closed || this.completed) return;
    this.queue.push(item);
    this.pushed++;
    this.changed();
    this.pump();
  }

  complete(): void {
    if (this.completed) return;
    this.completed = true;
    this.pump();
  }

  error(error: unknown): void {
    if (this.completed) return;
    this.completed = true;
    this.failure = { error };
    this.pump();
  }

  /** Stops delivering and drops queued items (the graph is shutting down). */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.subscriber = undefined;
  }

  /**
   * The consumer's view. `gate` is the consumer node's output gate: delivery pauses while it is closed.
   * A channel has exactly one consumer, so the Observable may be subscribed once.
   */
  observable(gate: OutputGate = OPEN_GATE): Observable<T> {
    return new Observable<T>((subscriber) => {
      if (this.subscribed) {
        subscriber.error(new Error(`${this.label}: a stream input can be subscribed only once (use share() to fan out inside a node)`));
        return;
      }
      this.subscribed = true;
      this.subscriber = subscriber;
      const stopListening = gate.onOpen(() => this.pump(gate));
      this.consumerGate = gate;
      this.pump();
      return () => {
        stopListening();
        this.subscriber = undefined;
        this.closed = true;
        this.abandoned = true;
        this.queue.length = 0;
        this.producerGate?.notifySpace();
      };
    });
  }

  private consumerGate: OutputGate = OPEN_GATE;

  private pump(gate: OutputGate = this.consumerGate): void {
    if (this.delivering || this.held || !this.subscriber) return;
    this.delivering = true;
    try {
      while (this.subscriber && !this.closed && this.queue.length > 0 && gate.isOpen()) {
        const item = this.queue.shift() as T;
        this.delivered++;
        this.changed();
        this.producerGate?.notifySpace();
        // Telling the producer may have run code that unsubscribed this consumer.
        const subscriber = this.subscriber;
        if (!subscriber || this.closed) break;
        const done = deliverPulled(
          () => subscriber.next(item),
          () => {
            this.held = false;
            this.pump();
          },
        );
        if (!done) {
          this.held = true;
          break;
        }
      }
      if (this.subscriber && !this.held && this.queue.length === 0 && this.completed) {
        const subscriber = this.subscriber;
        this.subscriber = undefined;
        if (this.failure) subscriber.error(this.failure.error);
        else subscriber.complete();
      }
    } finally {
      this.delivering = false;
    }
  }

  private changed(): void {
    if (this.changeListeners.size === 0) return;
    const stats = this.stats();
    for (const listener of this.changeListeners) listener(stats);
  }
}
