// The key/value cache for batched generation with continuous batching: a fixed number of slots, each
// holding one sequence at its own length. Per layer, keys are stored transposed, [slots, kvHeads, headDim,
// maxLength], so a decode step multiplies the queries by them as they are (no per-step transpose of the
// whole cache), and values as [slots, kvHeads, maxLength, headDim].
import { tf } from './tf.js';
import { swapLastAxes } from './matmul.js';

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

/** What attention reads for one layer: keys [B, kvH, S, D] (or transposed, [B, kvH, D, S]) and values [B, kvH, S, D]. */
export interface AttendOver {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  keysTransposed?: boolean;
}

/**
 * The one seam between a pass and the cache: `update(layer, k, v)` stores a layer's new keys and values
 * [B, kvH, T, D] and returns what that layer attends over; `commit()` runs after the pass (outside its
 * tidy) and makes the writes the cache's. The in-place cache writes host memory and has nothing to
 * commit; the copying cache builds new tensors and swaps them in at commit. Create it inside the pass's
 * tidy (its index tensors are the pass's).
 */
export interface KVUpdate {
  update(layer: number, keys: tf.Tensor4D, values: tf.Tensor4D): AttendOver;
  commit(): void;
}

/** Swaps in new per-layer tensors, freeing the old ones. */
export function replaceStores(cache: KVCache, keys: tf.Tensor4D[], values: tf.Tensor4D[]): void {
  keys.forEach((k, i) => {
    cache.keys[i].dispose();
    cache.keys[i] = k;
  });
  values.forEach((v, i) => {
    cache.values[i].dispose();
    cache.values[i] = v;
  });
}

/** A prefill of `slots` with right-padded prompts (`lengths`, padded to `longest`): attention reads the pass's own keys. */
export function prefillUpdate(cache: KVCache, slots: number[], lengths: number[], longest: number): KVUpdate {
  if (cache.inPlace) {
    const starts = slots.map(() => 0);
    return {
      update: (layer, k, v) => (writeInPlace(cache, layer, k, v, slots, starts, lengths), { keys: k, values: v }),
      commit: () => {},
    };
  }
  // Each slot's new rows, scattered whole (padded to the cache length).
  const slotIndex = tf.tensor2d(slots, [slots.length, 1], 'int32');
  const padColumns = cache.maxLength - longest;
  const newKeys: tf.Tensor4D[] = [];
  const newValues: tf.Tensor4D[] = [];
  const write = (store: tf.Tensor4D, x: tf.Tensor4D, axis: number) => {
    const padding: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
    padding[axis] = [0, padColumns];
    const rows = padColumns > 0 ? tf.pad(x, padding) : x;
    return tf.keep(tf.tensorScatterUpdate(store, slotIndex, rows)) as tf.Tensor4D;
  };
  return {
    update: (layer, k, v) => {
      newKeys[layer] = write(cache.keys[layer], swapLastAxes(k), 3);
      newValues[layer] = write(cache.values[layer], v, 2);
      return { keys: k, values: v };
    },
    commit: () => replaceStores(cache, newKeys, newValues),
  };
}

/**
 * A decode step. In place: every slot runs, in slot order (`positions` per slot; `writes` 1 where a
 * token is really decoded), and attention reads the whole cache as it lies. Copying: only the decoded
 * slots run; attention reads their rows over columns [0, span).
 */
export function decodeUpdate(
  cache: KVCache,
  rows: { slots: number[]; positions: number[]; writes?: number[]; span: number },
): KVUpdate {
  const { slots, positions, span } = rows;
  if (cache.inPlace) {
    return {
      update: (layer, k, v) => {
        writeInPlace(cache, layer, k, v, slots, positions, rows.writes ?? slots.map(() => 1));
        return { keys: cache.keys[layer], values: cache.values[layer], keysTransposed: true };
      },
      commit: () => {},
    };
  }
  const n = slots.length;
  const [, numKvHeads, headDim] = cache.keys[0].shape;
  const allSlotsInOrder = n === cache.slots && slots.every((s, i) => s === i);
  const slotTensor = tf.tensor1d(slots, 'int32');
  // Gather whole slots of a 2-D view (a rank-4 gather is slow on wasm).
  const read = (sliced: tf.Tensor4D): tf.Tensor4D => {
    if (allSlotsInOrder) return sliced;
    const [, a, b, c] = sliced.shape;
    return tf.gather(sliced.reshape([cache.slots, a * b * c]), slotTensor).reshape([n, a, b, c]) as tf.Tensor4D;
  };
  // (slot, head, position) of each new value row; (slot, head, dim, position) of each new key entry
  const valueIndex = tf.tensor2d(slots.flatMap((s, i) => Array.from({ length: numKvHeads }, (_, h) => [s, h, positions[i]])), [n * numKvHeads, 3], 'int32');
  const keyIndex = tf.tensor2d(
    slots.flatMap((s, i) => Array.from({ length: numKvHeads * headDim }, (_, hd) => [s, Math.floor(hd / headDim), hd % headDim, positions[i]])),
    [n * numKvHeads * headDim, 4],
    'int32',
  );
  const newKeys: tf.Tensor4D[] = [];
  const newValues: tf.Tensor4D[] = [];
  return {
    update: (layer, k, v) => {
      newKeys[layer] = tf.keep(tf.tensorScatterUpdate(cache.keys[layer], keyIndex, k.reshape([n * numKvHeads * headDim]))) as tf.Tensor4D;
      newValues[layer] = tf.keep(tf.tensorScatterUpdate(cache.values[layer], valueIndex, v.reshape([n * numKvHeads, headDim]))) as tf.Tensor4D;
      const keys = span === cache.maxLength ? newKeys[layer] : tf.slice(newKeys[layer], [0, 0, 0, 0], [cache.slots, numKvHeads, headDim, span]);
      const values = span === cache.maxLength ? newValues[layer] : tf.slice(newValues[layer], [0, 0, 0, 0], [cache.slots, numKvHeads, span, headDim]);
      return { keys: read(keys as tf.Tensor4D), values: read(values as tf.Tensor4D), keysTransposed: true };
    },
    commit: () => replaceStores(cache, newKeys, newValues),
  };
}
