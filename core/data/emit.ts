// Emit items from an (async) iterable as an Observable, lazily: the iterable is made at subscription,
// each item waits for room on the node's output edges (`outputReady`), and the stream completes when
// the run is aborted or the subscriber leaves.
import { defer, type Observable } from 'rxjs';
import { fromIterableWithBackpressure } from '../runtime/operators/from-iterable.js';

export interface EmitContext {
  readonly signal: AbortSignal;
  outputReady(): Promise<void>;
}

export function emitLazily<T>(ctx: EmitContext, source: () => AsyncIterable<T> | Iterable<T>): Observable<T> {
  return defer(() => fromIterableWithBackpressure(source(), () => ctx.outputReady(), ctx.signal));
}
