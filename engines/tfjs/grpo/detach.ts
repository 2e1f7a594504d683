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
