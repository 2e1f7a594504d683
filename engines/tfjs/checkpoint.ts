// Gradient checkpointing: run a function without keeping its intermediates, and recompute them in
// the backward pass. tfjs has no built-in for this; a customGrad whose gradient re-runs the function
// under tf.grads does it. tf.grads called while another tf.grads is back-propagating replaces the
// engine's active tape (and nulls it when done), so the outer tape is put back afterwards.
import { tf } from './tf.js';

interface EngineState {
  activeTape: unknown;
}

function withOuterTapePreserved<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state: EngineState }).state;
  const outer = state.activeTape;
  try {
    return fn();
  } finally {
    state.activeTape = outer;
  }
}

/**
 * `fn(x, params, constants)` whose backward pass recomputes the forward. Gradients flow to `x` and
 * `params` (LoRA variables); `constants` (rotary tables, masks) are kept alive for the recomputation
 * and get zero gradients. Everything else `fn` closes over must outlive the backward pass (weights).
 */
export function checkpointed(
  fn: (x: tf.Tensor, params: tf.Tensor[], constants: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  params: tf.Tensor[],
  constants: tf.Tensor[],
): tf.Tensor {
  const p = params.length;
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as tf.Tensor[];
    save(inputs);
    const value = fn(inputs[0], inputs.slice(1, 1 + p), inputs.slice(1 + p));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        withOuterTapePreserved(() => {
          const fixed = saved.slice(1 + p);
          const grads = tf.grads((...again: tf.Tensor[]) => fn(again[0], again.slice(1), fixed))(saved.slice(0, 1 + p), dy);
          return [...grads, ...fixed.map((c) => tf.zerosLike(c))];
        }),
    };
  });
  return (op as (...t: tf.Tensor[]) => tf.Tensor)(x, ...params, ...constants);
}
