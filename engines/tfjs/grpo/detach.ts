// TensorFlow.js has no stop_gradient/detach: an identity whose gradient is zero does the same job.
import { tf } from '../tf.js';

const detachOp = tf.customGrad((...inputs) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/** `x` with no gradient flowing back through it (torch's `x.detach()`). */
export function detach<T extends tf.Tensor>(x: T): T {
  return detachOp(x) as T;
}

/**
 * `fn(...inputs)` as a constant of the backward pass: no gradient flows back through it, and ops it uses
 * that have no gradient in TensorFlow.js (TopK, logical ops) may sit on the loss's path.
 */
export function withoutGradient(fn: (...inputs: tf.Tensor[]) => tf.Tensor, ...inputs: tf.Tensor[]): tf.Tensor {
  const op = tf.customGrad((...args) => {
    const tensors = args.slice(0, inputs.length) as tf.Tensor[];
    return { value: fn(...tensors), gradFunc: () => tensors.map((t) => tf.zerosLike(t)) };
  });
  return op(...inputs);
}
