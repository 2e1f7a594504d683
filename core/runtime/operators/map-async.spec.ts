import { tap, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { BoundedChannel } from '../channel.js';
import { OutputGate } from '../gate.js';
import { mapAsync } from './map-async.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('mapAsync', () => {
  it('on a push Observable it runs one item at a time, in order (like concatMap)', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c|');
      const result = source.pipe(mapAsync((x) => cold('--(y|)', { y: x.toUpperCase() })));
      expectObservable(result).toBe('--A-B-(C|)');
    });
  });

  it('emits every value of the inner result and propagates errors', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a|').pipe(mapAsync(() => cold('-x-y|')))).toBe('-x-y|');
      expectObservable(cold('ab|').pipe(mapAsync((v) => (v === 'a' ? cold('-#') : cold('-z|'))))).toBe('-#');
    });
  });

  it('pulls from a bounded channel only after the previous item finished', () => {
    const testScheduler = scheduler();
    testScheduler.run(({ cold, expectObservable, flush }) => {
      const channel = new BoundedChannel<string>(4);
      for (const x of ['a', 'b', 'c']) channel.push(x);
      channel.complete();
      const deliveredAt: number[] = [];
      const delivered = channel.observable().pipe(tap(() => deliveredAt.push(testScheduler.now())));
      expectObservable(delivered.pipe(mapAsync((x) => cold('---(y|)', { y: x })))).toBe('---a--b--(c|)');
      flush();
      // All three were queued at frame 0, yet each was delivered only when the previous one finished
      // (a push consumer such as concatMap would have taken all three at frame 0 and queued them itself).
      expect(deliveredAt).toEqual([0, 3, 6]);
    });
  });

  it('keeps a fast producer within `buffer` items of a slow consumer', () => {
    scheduler().run(({ cold, expectObservable, flush }) => {
      const k = 2;
      const gate = new OutputGate();
      const channel = new BoundedChannel<number>(k);
      channel.attachProducerGate(gate);
      // A producer with 8 items that pushes whenever its gate is open (synchronously: no slack).
      let produced = 0;
      let finished = 0;
      const leads: number[] = [];
      const produce = () => {
        while (produced < 8 && gate.isOpen()) {
          channel.push(produced++);
          leads.push(produced - finished);
        }
        if (produced === 8) channel.complete();
      };
      gate.onOpen(produce);
      produce();
      const result: Observable<number> = channel.observable().pipe(
        mapAsync((x) => cold('--(y|)', { y: x })),
        tap(() => finished++),
      );
      expectObservable(result).toBe('--a-b-c-d-e-f-g-(h|)', { a: 0, b: 1, c: 2, d: 3, e: 4, f: 5, g: 6, h: 7 });
      flush();
      // k waiting in the channel plus the one being processed.
      expect(Math.max(...leads)).toBe(k + 1);
      expect(channel.stats().depth).toBe(0);
    });
  });
});
