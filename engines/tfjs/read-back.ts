// Asynchronous read-back of tensors to the host. WebGPU in Node has no synchronous read (dataSync and
// arraySync throw there), so every read on the training and export paths goes through here.
import { tf } from './tf.js';

/**
 * The values of `tensors` as float32 host copies the caller owns. Every read is issued before the first
 * await, on clones that pin the data, so the result is the tensors' values at the moment of the call even
 * if a variable is reassigned (or a tensor disposed) while the reads are in flight — WebGPU's read would
 * otherwise fail on data freed mid-read.
 */
export async function readFloat32(tensors: readonly tf.Tensor[], where = 'readFloat32'): Promise<Float32Array[]> {
  tensors.forEach((t, i) => {
    if (t.dtype !== 'float32') throw new Error(`${where}: tensor ${i} is ${t.dtype}, expected float32`);
  });
  const pinned = tensors.map((t) => tf.clone(t));
  try {
    const values = await Promise.all(pinned.map((t) => t.data<'float32'>()));
    // The CPU backend hands out its own storage; copy so the caller may keep or change the arrays.
    return values.map((v) => Float32Array.from(v));
  } finally {
    tf.dispose(pinned);
  }
}
