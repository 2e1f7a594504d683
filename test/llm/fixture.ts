// Shared helpers for the LLM tests: the llama-tiny fixture and its reference outputs.
import { readFileSync } from 'node:fs';
import { tf } from '../../engines/tfjs/tf.js';

export const LLAMA_TINY = 'test/fixtures/llama-tiny';

export interface ReferenceChat {
  ids: number[];
  last_logits: number[];
  greedy: number[];
  sequence_logprobs: number[];
}

export interface Reference {
  chats: ReferenceChat[];
  adapter: ReferenceChat[];
  merged: ReferenceChat[];
}

export function readReference(): Reference {
  return JSON.parse(readFileSync(`${LLAMA_TINY}/reference.json`, 'utf8'));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** log-softmax of one row, taken at `index`. */
export function logSoftmaxAt(row: Float32Array | number[], index: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return row[index] - max - Math.log(sum);
}

export function argMax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

export function ids2d(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
}
