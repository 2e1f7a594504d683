import { describe, expect, it } from 'vitest';
import { BoundedChannel } from '../channel.js';
import { OutputGate } from '../gate.js';
import { fromIterableWithBackpressure } from './from-iterable.js';

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('fromIterableWithBackpressure', () => {
  it('stops producing while the output channel is full and resumes when the consumer takes', async () => {
    const gate = new OutputGate();
    const channel = new BoundedChannel<number>(2);
    channel.attachProducerGate(gate);
    let pulled = 0;
    function* items() {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i;
      }
    }
    fromIterableWithBackpressure(items(), () => gate.whenOpen()).subscribe({
      next: (x) => channel.push(x),
      complete: () => channel.complete(),
    });
    await settle();
    expect(channel.depth).toBe(2);
    expect(pulled).toBe(2); // the iterator itself is not advanced ahead of the channel
    const got: number[] = [];
    const sub = channel.observable().subscribe((x) => got.push(x));
    await settle();
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    sub.unsubscribe();
  });

  it('works with async iterables, propagates errors, and stops on unsubscribe', async () => {
    async function* failing() {
      yield 1;
      throw new Error('read failed');
    }
    const events: unknown[] = [];
    fromIterableWithBackpressure(failing(), async () => {}).subscribe({ next: (x) => events.push(x), error: (e) => events.push((e as Error).message) });
    await settle();
    expect(events).toEqual([1, 'read failed']);

    let produced = 0;
    async function* endless() {
      for (;;) yield produced++;
    }
    const sub = fromIterableWithBackpressure(endless(), () => new Promise((r) => setTimeout(r, 1))).subscribe();
    await settle();
    sub.unsubscribe();
    const at = produced;
    await new Promise((r) => setTimeout(r, 10));
    expect(produced - at).toBeLessThanOrEqual(1);
  });
});
