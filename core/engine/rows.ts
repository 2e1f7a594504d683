// Rows: the one layout in which token sequences cross the engine boundary (rollout engines' sample and
// score, the policy trainer's step). Flat typed arrays, row after row, so they cross a thread boundary as
// a few buffers and no side converts nested lists back and forth. Plain data: no tensor library here.

export interface Rows {
  /** Every row's prompt tokens, row after row; row i's are promptIds[promptOffsets[i] .. promptOffsets[i + 1]). */
  promptIds: Int32Array;
  /** rows + 1 offsets into promptIds. */
  promptOffsets: Int32Array;
  /** Every row's completion tokens, row after row (completionOffsets as promptOffsets). */
  completionIds: Int32Array;
  completionOffsets: Int32Array;
  /** Row → prompt group: rows of one group share their prompt (GRPO's G completions), numbered from 0. */
  group: Int32Array;
}

/** Rows with what the policy trainer's step needs besides the tokens. */
export interface TrainingRows extends Rows {
  /** One advantage per row. */
  advantages: Float32Array;
  /** 1 where the completion was cut at the length limit (finish reason 'length'). */
  truncated: Uint8Array;
  /** The sampler's log-probs, aligned with completionIds (absent where the sampler did not record them). */
  behaviourLogprobs?: Float32Array;
  /** The reference (adapter-free) log-probs, aligned with completionIds, when the rollout computed them. */
  refLogprobs?: Float32Array;
}

/** Per-token log-probs of rows: aligned with their completionIds (the same offsets). */
export type TokenLogprobs = Float32Array;

export function rowCount(rows: Rows): number {
  return rows.group.length;
}

/** Row i's prompt tokens (a view, not a copy). */
export function promptOf(rows: Rows, i: number): Int32Array {
  return rows.promptIds.subarray(rows.promptOffsets[i], rows.promptOffsets[i + 1]);
}

/** Row i's completion tokens (a view, not a copy). */
export function completionOf(rows: Rows, i: number): Int32Array {
  return rows.completionIds.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
}

/** Row i's part of values aligned with completionIds (log-probs). */
export function tokenValuesOf<T extends Float32Array | Int32Array>(rows: Rows, values: T, i: number): T {
  return values.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]) as T;
}

function concat(lists: ArrayLike<number>[]): { values: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(lists.length + 1);
  lists.forEach((list, i) => (offsets[i + 1] = offsets[i] + list.length));
  const values = new Int32Array(offsets[lists.length]);
  lists.forEach((list, i) => values.set(list, offsets[i]));
  return { values, offsets };
}

/** Float values per row, laid out along `offsets` (checked: each row's count must match). */
export function concatAligned(lists: ArrayLike<number>[], offsets: Int32Array, what: (i: number, got: number, want: number) => string): Float32Array {
  const values = new Float32Array(offsets[offsets.length - 1]);
  lists.forEach((list, i) => {
    const want = offsets[i + 1] - offsets[i];
    if (list.length !== want) throw new Error(what(i, list.length, want));
    values.set(list, offsets[i]);
  });
  return values;
}

/**
 * Rows of `(prompt, completion)` pairs; pairs with the same prompt form one group, so an engine can compute
 * each prompt once for its completions. `groups` gives the grouping instead, when the caller knows it.
 */
export function rowsOf(prompts: ArrayLike<number>[], completions: ArrayLike<number>[], groups?: ArrayLike<number>): Rows {
  if (prompts.length !== completions.length) throw new Error(`rows: ${prompts.length} prompts for ${completions.length} completions`);
  let group: Int32Array;
  if (groups) group = Int32Array.from(groups);
  else {
    const byPrompt = new Map<string, number>();
    group = Int32Array.from(prompts, (p) => {
      const key = Array.prototype.join.call(p, ',');
      let g = byPrompt.get(key);
      if (g === undefined) byPrompt.set(key, (g = byPrompt.size));
      return g;
    });
  }
  const p = concat(prompts);
  const c = concat(completions);
  return { promptIds: p.values, promptOffsets: p.offsets, completionIds: c.values, completionOffsets: c.offsets, group };
}

