// The key/value cache for batched generation with continuous batching: a fixed number of slots, each
// holding one sequence at its own length. Per layer, keys are stored transposed, [slots, kvHeads, headDim,
// maxLength], so a decode step multiplies the queries by them as they are (no per-step transpose of the
// whole cache), and values as [slots, kvHeads, maxLength, headDim].
import { tf } from './tf.js';

export interface KVCache {
  readonly slots: number;
  readonly maxLength: number;
  /** Per layer [slots, kvHeads, headDim, maxLength]. */
  keys: tf.Tensor4D[];
  /** Per layer [slots, kvHeads, maxLength, headDim]. */
  values: tf.Tensor4D[];
  /** Tokens held by each slot; 0 = free. */
  lengths: number[];
  /**
   * Whether new keys/values are written into the cache's own memory (wasm and cpu backends, whose tensors
   * live in host memory). Otherwise each write makes a new cache tensor (immutable tensors: a full copy).
   */
  inPlace: boolean;
  disposed: boolean;
}

interface HostBackend {
  typedArrayFromHeap?: (info: { shape: number[]; dtype: string; dataId: object }) => Float32Array;
  data?: { get(dataId: object): { values?: unknown } | undefined };
}

/**
 * A live Float32Array over a float32 tensor's storage where the backend keeps it in host memory (wasm heap,
 * cpu arrays); undefined elsewhere. Take a new view after any tfjs call: the wasm heap can grow and move.
 */
export function hostView(t: tf.Tensor): Float32Array | undefined {
  if (t.dtype !== 'float32' || t.isDisposed) return undefined;
  const name = tf.getBackend();
  const backend = tf.backend() as unknown as HostBackend;
  if (name === 'wasm' && backend.typedArrayFromHeap) return backend.typedArrayFromHeap({ shape: t.shape, dtype: t.dtype, dataId: t.dataId });
  if (name === 'cpu') {
    const values = backend.data?.get(t.dataId)?.values;
    return values instanceof Float32Array && values.length === t.size ? values : undefined;
  }
  return undefined;
}

/** Whether this backend lets the cache be written in place (see `KVCache.inPlace`). */
export function inPlaceWritesSupported(): boolean {
  const probe = tf.zeros([1]);
  try {
    return hostView(probe) !== undefined;
  } finally {
    probe.dispose();
  }
}

/**
 * Writes rows of new keys and values x [n, kvHeads, T, headDim] into slot `slots[i]` at positions
 * `starts[i] ..` for the first `counts[i]` rows of T, in place. Keys go into the transposed layout.
 * Only for caches with `inPlace`; the tensors are not replaced.
 */
export function writeInPlace(
  cache: KVCache,
  layer: number,
  keys: tf.Tensor4D,
  values: tf.Tensor4D,
  slots: readonly number[],
  starts: readonly number[],
  counts: readonly number[],
): void {
  const [n, kvHeads, t, headDim] = keys.shape;
  const L = cache.maxLength;
  const k = hostView(keys);
  const v = hostView(values);
  const kStore = hostView(cache.keys[layer]);
  const vStore = hostView(cache.values[layer]);
  if (!k || !v || !kStore || !vStore) throw new Error('KV cache: in-place write on a backend without host memory');
  for (let i = 0; i < n; i++) {
    const slot = slots[i];
    const start = starts[i];
    const count = counts[i];
    if (start + count > L) throw new Error(`KV cache: slot ${slot} would hold ${start + count} tokens (maxLength ${L})`);
    for (let h = 0; h < kvHeads; h++) {
      const src = ((i * kvHeads + h) * t) * headDim;
      const head = (slot * kvHeads + h) * headDim * L; // the same offset in both layouts
      vStore.set(v.subarray(src, src + count * headDim), head + start * headDim);
      for (let r = 0; r < count; r++) {
        const row = src + r * headDim;
        const column = head + start + r;
        for (let d = 0; d < headDim; d++) kStore[column + d * L] = k[row + d];
      }
    }
  }
}

/** Copies whole slots (`to[i]` ← `from[i]`) of every layer's keys and values, in place. */
export function copySlotsInPlace(cache: KVCache, from: readonly number[], to: readonly number[]): void {
  for (const store of [...cache.keys, ...cache.values]) {
    const view = hostView(store);
    if (!view) throw new Error('KV cache: in-place copy on a backend without host memory');
    const size = view.length / cache.slots;
    from.forEach((source, i) => view.copyWithin(to[i] * size, source * size, (source + 1) * size));
  }
}
