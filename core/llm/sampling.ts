// Next-token choice from one row of logits, as transformers' logits processors do it, on a Float32Array
// (generation reads each step's logits back once; a row of a 128k vocabulary is cheap to scan in JS).
// Order, as transformers applies them: repetition penalty → temperature → top-k → top-p → min-p.
import type { Rng } from '../rng.js';

export interface SamplingParams {
  /** 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose mass reaches p; 1 = off. */
  topP?: number;
  /** Keep tokens at least `minP` times as likely as the most likely one; 0 = off. */
  minP?: number;
  /** transformers' repetition_penalty: seen tokens' positive logits ÷ penalty, negative × penalty; 1 = off. */
  repetitionPenalty?: number;
}

export interface SampledToken {
  id: number;
  /** log p(id) under the UNMODIFIED logits (log_softmax of the raw row): the behaviour log-prob. */
  logprob: number;
}

/** Throws a clear error for out-of-range parameters. */
export function validateSamplingParams(params: SamplingParams): Required<SamplingParams> {
  const p = { temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, ...params };
  const fail = (what: string) => {
    throw new Error(`sampling: ${what}`);
  };
  if (!(p.temperature >= 0) || !Number.isFinite(p.temperature)) fail(`temperature must be ≥ 0, got ${p.temperature}`);
  if (!Number.isInteger(p.topK) || p.topK < 0) fail(`top_k must be a whole number ≥ 0, got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1)) fail(`top_p must be in (0, 1], got ${p.topP}`);
  if (!(p.minP >= 0 && p.minP <= 1)) fail(`min_p must be in [0, 1], got ${p.minP}`);
  if (!(p.repetitionPenalty > 0) || !Number.isFinite(p.repetitionPenalty)) {
    fail(`repetition_penalty must be > 0, got ${p.repetitionPenalty}`);
  }
  return p;
}

/** log_softmax(row)[id], in float64. */
export function logProbOf(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return row[id] - max - Math.log(sum);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Indices of the k largest values, largest first, in O(V log k) with a min-heap (no full sort). */
export function topKIndices(row: Float32Array, k: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number) => row[a] < row[b] || (row[a] === row[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < row.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!less(heap[c], heap[p])) break;
        [heap[c], heap[p]] = [heap[p], heap[c]];
        c = p;
      }
    } else if (less(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => row[b] - row[a] || a - b);
}

/**
 * Applies the repetition penalty to a copy of `row` (into `scratch` when it is big enough) and returns it;
 * returns `row` itself when there is nothing to penalise.
 */
function penalised(row: Float32Array, seen: Iterable<number> | undefined, penalty: number, scratch?: Float32Array): Float32Array {
  if (penalty === 1 || !seen) return row;
  const out = scratch && scratch.length >= row.length ? scratch.subarray(0, row.length) : new Float32Array(row.length);
  out.set(row);
  for (const id of seen) {
    if (id < 0 || id >= row.length) continue;
    const v = row[id];
    out[id] = v < 0 ? v * penalty : v / penalty;
  }
  return out;
}

/**
 * Picks the next token from one row of raw logits.
 * `seen` (prompt + generated ids) feeds the repetition penalty; `scratch` is an optional reusable buffer.
 */
export function sampleToken(
  row: Float32Array,
  params: Required<SamplingParams>,
  rng: Rng,
  seen?: Iterable<number>,
  scratch?: Float32Array,
): SampledToken {
  const scores = penalised(row, seen, params.repetitionPenalty, scratch);
  const id = params.temperature === 0 ? argmax(scores) : sampleFrom(scores, params, rng);
  return { id, logprob: logProbOf(row, id) };
}

function sampleFrom(scores: Float32Array, params: Required<SamplingParams>, rng: Rng): number {
  const invT = 1 / params.temperature;
  const V = scores.length;
  // Candidates in descending order when a filter needs order; `null` = the whole vocabulary, unordered.
  let candidates: number[] | null = params.topK > 0 && params.topK < V ? topKIndices(scores, params.topK) : null;

  let max = -Infinity;
  if (candidates) max = scores[candidates[0]];
  else for (let i = 0; i < V; i++) if (scores[i] > max) max = scores[i];
  if (max === -Infinity || Number.isNaN(max)) throw new Error('sampling: every logit is -inf or NaN');
  const weight = (i: number) => Math.exp((scores[i] - max) * invT);

  if (params.topP < 1) {
    let total = 0;
    if (candidates) for (const i of candidates) total += weight(i);
    else for (let i = 0; i < V; i++) total += weight(i);
    if (!candidates) candidates = headByMass(scores, max, invT, total * params.topP);
    // Keep a token while the mass strictly before it is below top_p (transformers keeps at least one).
    const keep: number[] = [];
    let before = 0;
    for (const i of candidates) {
      if (keep.length > 0 && before >= params.topP * total) break;
      keep.push(i);
      before += weight(i);
    }
    candidates = keep;
  }

  // min-p compares with the top token's probability; the normaliser cancels, so compare weights (top = 1).
  const floor = params.minP > 0 ? params.minP : 0;

  let sum = 0;
  if (candidates) {
    for (const i of candidates) {
      const w = weight(i);
      if (w >= floor) sum += w;
    }
    let u = rng.next() * sum;
    let last = candidates[0];
    for (const i of candidates) {
      const w = weight(i);
      if (w < floor) continue;
      last = i;
      u -= w;
      if (u < 0) return i;
    }
    return last;
  }
  for (let i = 0; i < V; i++) {
    const w = weight(i);
    if (w >= floor) sum += w;
  }
  let u = rng.next() * sum;
  let last = 0;
  for (let i = 0; i < V; i++) {
    const w = weight(i);
    if (w < floor || w === 0) continue;
    last = i;
    u -= w;
    if (u < 0) return i;
  }
  return last;
}

/**
 * The most likely tokens, sorted, covering at least `mass` of the (unnormalised) weight — without sorting
 * the whole vocabulary: take everything above a threshold, lowering it until the head holds enough mass.
 */
function headByMass(scores: Float32Array, max: number, invT: number, mass: number): number[] {
  for (let logThreshold = -7; ; logThreshold *= 2) {
    const head: number[] = [];
    let headMass = 0;
    const cut = logThreshold;
    for (let i = 0; i < scores.length; i++) {
      const x = (scores[i] - max) * invT;
      if (x >= cut) {
        head.push(i);
        headMass += Math.exp(x);
      }
    }
    if (headMass >= mass || logThreshold < -1e4) {
      return head.sort((a, b) => scores[b] - scores[a] || a - b);
    }
  }
}
