import { describe, expect, it } from 'vitest';
import { BoundedChannel } from './channel.js';
import { holdDelivery } from './delivery.js';
import { OutputGate } from './gate.js';

describe('BoundedChannel', () => {
  it('is full at capacity and tells the producer gate when room appears', () => {
    const gate = new OutputGate();
    const channel = new BoundedChannel<number>(2, 'a.out -> b.in');
    channel.attachProducerGate(gate);
    let opened = 0;
    gate.onOpen(() => opened++);
    channel.push(1);
    expect(gate.isOpen()).toBe(true);
    channel.push(2);
    expect(gate.isOpen()).toBe(false);
    const got: number[] = [];
    channel.observable().subscribe((x) => got.push(x));
    expect(got).toEqual([1, 2]);
    expect(gate.isOpen()).toBe(true);
    expect(opened).toBeGreaterThan(0);
  });

  it('delivers the next item only after a hold on the previous one is released', () => {
    const channel = new BoundedChannel<number>(3);
    [1, 2, 3].forEach((x) => channel.push(x));
    const releases: (() => void)[] = [];
    const got: number[] = [];
    channel.observable().subscribe((x) => {
      got.push(x);
      releases.push(holdDelivery());
    });
    expect(got).toEqual([1]);
    releases[0]();
    expect(got).toEqual([1, 2]);
    releases[1]();
    releases[1](); // releasing twice is harmless
    expect(got).toEqual([1, 2, 3]);
  });

  it('pauses while the consumer gate is closed', () => {
    const consumerGate = new OutputGate();
    const downstream = new BoundedChannel<number>(1);
    downstream.attachProducerGate(consumerGate);
    downstream.push(0); // the consumer's output is full
    const channel = new BoundedChannel<number>(2);
    channel.push(1);
    const got: number[] = [];
    channel.observable(consumerGate).subscribe((x) => got.push(x));
    expect(got).toEqual([]);
    downstream.observable().subscribe(); // consumer's consumer takes its item: gate opens
    expect(got).toEqual([1]);
  });

  it('completes after draining, errors, and can be subscribed once', () => {
    const channel = new BoundedChannel<number>(2);
    channel.push(1);
    channel.complete();
    const events: string[] = [];
    channel.observable().subscribe({ next: (x) => events.push(`n${x}`), complete: () => events.push('c') });
    expect(events).toEqual(['n1', 'c']);
    let error: unknown;
    channel.observable().subscribe({ error: (e) => (error = e) });
    expect(String(error)).toMatch(/subscribed only once/);

    const failing = new BoundedChannel<number>(1);
    failing.error(new Error('x'));
    let failed: unknown;
    failing.observable().subscribe({ error: (e) => (failed = e) });
    expect((failed as Error).message).toBe('x');
  });

  it('an unsubscribed consumer no longer holds the producer back while another consumer remains', () => {
    const gate = new OutputGate();
    const channel = new BoundedChannel<number>(1);
    const other = new BoundedChannel<number>(1);
    channel.attachProducerGate(gate);
    other.attachProducerGate(gate);
    other.observable().subscribe();
    const sub = channel.observable().subscribe(() => holdDelivery());
    channel.push(1);
    channel.push(2);
    expect(gate.isOpen()).toBe(false);
    sub.unsubscribe();
    expect(gate.isOpen()).toBe(true);
  });

  it('once every consumer has left, the producer waits instead of producing for no one', async () => {
    const gate = new OutputGate();
    const channel = new BoundedChannel<number>(2);
    channel.attachProducerGate(gate);
    const sub = channel.observable().subscribe();
    expect(gate.isOpen()).toBe(true);
    sub.unsubscribe();
    expect(channel.isAbandoned()).toBe(true);
    expect(gate.isOpen()).toBe(false);
    const abort = new AbortController();
    const waiting = gate.whenOpen(abort.signal);
    abort.abort(new Error('run over'));
    await expect(waiting).rejects.toThrow('run over');
  });

  it('rejects a capacity below 1', () => {
    expect(() => new BoundedChannel(0, 'x.y -> z.w')).toThrow(/x.y -> z.w: buffer must be a positive integer/);
  });
});
