// Emit items from an (async) iterable as an Observable, lazily: each item waits for room on the node's
// output edges (`outputReady`), and the loop stops when the run is aborted or the subscriber leaves.
import { Observable } from 'rxjs';

export interface EmitContext {
  readonly signal: AbortSignal;
  outputReady(): Promise<void>;
}

export function emitLazily<T>(ctx: EmitContext, source: () => AsyncIterable<T> | Iterable<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    let stopped = false;
    const iterable = source();
    const iterator = Symbol.asyncIterator in iterable ? (iterable as AsyncIterable<T>)[Symbol.asyncIterator]() : (iterable as Iterable<T>)[Symbol.iterator]();
    (async () => {
      for (;;) {
        if (stopped || ctx.signal.aborted) break;
        await ctx.outputReady();
        if (stopped || ctx.signal.aborted) break;
        const step = await iterator.next();
        if (stopped || ctx.signal.aborted) break;
        if (step.done) {
          subscriber.complete();
          return;
        }
        subscriber.next(step.value);
      }
      subscriber.complete();
    })().catch((err) => {
      // outputReady rejects when the run is aborted: that is a stop, not a failure of this node.
      if (ctx.signal.aborted) subscriber.complete();
      else subscriber.error(err);
    });
    return () => {
      stopped = true;
      // Close files held by generator-based sources.
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    };
  });
}
