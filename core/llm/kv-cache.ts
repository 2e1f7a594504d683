// The key/value cache for batched generation with continuous batching: a fixed number of slots, each
// holding one sequence at its own length. Per layer, keys and values are [slots, kvHeads, maxLength, headDim].
import type { tf } from './tf.js';

export interface KVCache {
  readonly slots: number;
  readonly maxLength: number;
  /** Per layer [slots, kvHeads, maxLength, headDim]; replaced (old one disposed) on every write. */
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
  /** Tokens held by each slot; 0 = free. */
  lengths: number[];
  disposed: boolean;
}
