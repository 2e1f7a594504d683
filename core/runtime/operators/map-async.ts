// mapAsync: per-item asynchronous work that keeps the stream's bound. For each item it holds the pull
// delivery (see ../delivery.ts), runs `project`, emits every value of its result downstream, and only
// then releases the hold, so the next item is requested after `project` resolved and its result was
// accepted downstream. On a plain push Observable it behaves like `concatMap` (items wait their turn).
import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import { holdDelivery } from '../delivery.js';

export function mapAsync<T, R>(project: (value: T, index: number) => ObservableInput<R>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const pending: { value: T; release: () => void }[] = [];
      let active: Subscription | undefined;
      let sourceDone = false;
      let index = 0;

      let running = false;

      const finishIfDone = (): void => {
        if (!running && pending.length === 0 && sourceDone) subscriber.complete();
      };

      const startNext = (): void => {
        while (!running && pending.length > 0 && !subscriber.closed) {
          const { value, release } = pending.shift()!;
          let inner: Observable<R>;
          try {
            inner = from(project(value, index++));
          } catch (error) {
            release();
            subscriber.error(error);
            return;
          }
          running = true;
          let subscribing = true;
          active = inner.subscribe({
            next: (result) => subscriber.next(result),
            error: (error) => {
              release();
              subscriber.error(error);
            },
            complete: () => {
              running = false;
              active = undefined;
              release();
              // A result that completed inside subscribe() lets the loop carry on; otherwise restart it.
              if (!subscribing) startNext();
            },
          });
          subscribing = false;
          if (!running) active = undefined;
        }
        finishIfDone();
      };

      const sourceSub = source.subscribe({
        next: (value) => {
          pending.push({ value, release: holdDelivery() });
          startNext();
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          finishIfDone();
        },
      });
      return () => {
        sourceSub.unsubscribe();
        active?.unsubscribe();
        for (const p of pending) p.release();
        pending.length = 0;
      };
    });
}
