// fromIterableWithBackpressure: a source for nodes with no stream inputs. Before each item it waits
// for `ready()` (a node passes `() => ctx.outputReady()`), so it runs ahead of its consumers by at
// most their buffers. Works with sync and async iterables; stops pulling when unsubscribed.
import { Observable } from 'rxjs';

export function fromIterableWithBackpressure<T>(
  items: Iterable<T> | AsyncIterable<T>,
  ready: () => Promise<void>,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let stopped = false;
    const iterator: Iterator<T> | AsyncIterator<T> =
      Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
    (async () => {
      try {
        for (;;) {
          await ready();
          if (stopped) return;
          const step = await iterator.next();
          if (stopped) return;
          if (step.done) {
            subscriber.complete();
            return;
          }
          subscriber.next(step.value);
        }
      } catch (error) {
        if (!stopped) subscriber.error(error);
      }
    })();
    return () => {
      stopped = true;
      void iterator.return?.();
    };
  });
}
