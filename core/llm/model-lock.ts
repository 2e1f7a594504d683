// Exclusive, first-come-first-served access to one model's weights. Nodes of one process share a
// model object (rollouts sample from it, the trainer updates its LoRA weights, evaluation reads it);
// each holds the lock for one unit of work so that, say, an evaluation never sees weights half-way
// through an optimiser step, and a "before training" evaluation queued first runs first.
import type { CausalLM } from './model.js';

export class ModelLock {
  private tail: Promise<void> = Promise.resolve();

  /** Run `work` once every holder queued earlier has finished; holders run in the order they asked. */
  run<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(() => work());
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const locks = new WeakMap<object, ModelLock>();

/** The lock of a model object (one per model, created on first use). */
export function modelLock(model: CausalLM | object): ModelLock {
  let lock = locks.get(model);
  if (!lock) {
    lock = new ModelLock();
    locks.set(model, lock);
  }
  return lock;
}
