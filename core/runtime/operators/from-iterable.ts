// fromIterableWithBackpressure: a source for nodes with no stream inputs. Before each item it waits
// for `ready()` (a node passes `() => ctx.outputReady()`), so it runs ahead of its consumers by at
// most their buffers. Works with sync and async iterables; stops pulling when unsubscribed. With a
// `signal`, an aborted run completes the stream (a stop, not a failure of the source), and the
// iterator is closed (`return()`), so generator-based sources release the files they hold.
import { Observable } from 'rxjs';

export function fromIterableWithBackpressure<T>(
  items: Iterable<T> | AsyncIterable<T>,
  ready: () => Promise<void>,
  signal?: AbortSignal,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let stopped = false;
    const halted = () => stopped || signal?.aborted === true;
    const iterator: Iterator<T> | AsyncIterator<T> =
      Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
    (async () => {
      try {
        // Checked before each wait too: a consumer that leaves inside next() asks for nothing more.
        while (!halted()) {
          await ready();
          if (halted()) break;
          const step = await iterator.next();
          if (halted()) break;
          if (step.done) break;
          subscriber.next(step.value);
        }
        if (!stopped) subscriber.complete();
      } catch (error) {
        // `ready()` rejects when the run is aborted: with a signal, that is a stop.
        if (signal?.aborted) subscriber.complete();
        else if (!stopped) subscriber.error(error);
      }
    })();
    return () => {
      stopped = true;
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    };
  });
}
