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
  /** log p(id) under the UNMODIFIED logits (log_softmax of the raw row). */
  logprob: number;
  /**
   * log p(id) under the distribution it was drawn from: after the repetition penalty, temperature, top-k,
   * top-p and min-p. The behaviour log-prob an importance-sampling correction needs. Greedy draws from no
   * distribution: it reports the raw log-softmax (as vLLM and transformers do), and GRPO never trains on it
   * (train.grpo's temperature must equal the sampler's, and 0 is refused there).
   */
  sampledLogprob: number;
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

/** Reusable buffers for one vocabulary size, so a generation loop allocates nothing per token. */
export class SamplingWorkspace {
  readonly penalised: Float32Array;
  readonly weights: Float32Array;
  readonly buckets: Uint8Array;
  constructor(readonly vocabSize: number) {
    this.penalised = new Float32Array(vocabSize);
    this.weights = new Float32Array(vocabSize);
    this.buckets = new Uint8Array(vocabSize);
  }
}

export interface SampleContext {
  /** Prompt + generated ids, for the repetition penalty. */
  seen?: Iterable<number>;
  /** logsumexp of the raw row when already known (computed on the device): saves a pass over the row. */
  logNormalizer?: number;
  workspace?: SamplingWorkspace;
}

/** The row with the repetition penalty applied (a copy), or the row itself when nothing is penalised. */
function penalised(row: Float32Array, seen: Iterable<number> | undefined, penalty: number, workspace?: SamplingWorkspace): Float32Array {
  if (penalty === 1 || !seen) return row;
  const out = workspace && workspace.vocabSize === row.length ? workspace.penalised : new Float32Array(row.length);
  out.set(row);
  for (const id of seen) {
    if (id < 0 || id >= row.length) continue;
    const v = row[id];
    out[id] = v < 0 ? v * penalty : v / penalty;
  }
  return out;
}

/** Picks the next token from one row of raw logits. */
export function sampleToken(row: Float32Array, params: Required<SamplingParams>, rng: Rng, context: SampleContext = {}): SampledToken {
  const scores = penalised(row, context.seen, params.repetitionPenalty, context.workspace);
  if (params.temperature === 0) {
    const id = argmax(scores);
    const logprob = context.logNormalizer === undefined ? logProbOf(row, id) : row[id] - context.logNormalizer;
    return { id, logprob, sampledLogprob: logprob };
  }
  const { id, sampledLogprob } = sampleFrom(scores, params, rng, context.workspace);
  const logprob = context.logNormalizer === undefined ? logProbOf(row, id) : row[id] - context.logNormalizer;
  return { id, logprob, sampledLogprob };
}

/** A drawn token and its log-prob among the kept candidates: log(w_id / Σ kept w), w = exp((s − max)/T). */
interface Draw {
  id: number;
  sampledLogprob: number;
}

function sampleFrom(scores: Float32Array, params: Required<SamplingParams>, rng: Rng, workspace?: SamplingWorkspace): Draw {
  const V = scores.length;
  if (params.topK > 0 && params.topK < V) return sampleFromSorted(scores, topKIndices(scores, params.topK), params, rng);
  const invT = 1 / params.temperature;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (scores[i] > max) max = scores[i];
  if (max === -Infinity || Number.isNaN(max)) throw new Error('sampling: every logit is -inf or NaN');
  // One exp pass; weights are relative to the top token (whose weight is 1), so min-p compares with minP.
  const weights = workspace && workspace.vocabSize === V ? workspace.weights : new Float32Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) {
    const w = Math.exp((scores[i] - max) * invT);
    weights[i] = w;
    total += w;
  }
  const floor = params.minP;
  const draw = (id: number, keptMass: number): Draw => ({ id, sampledLogprob: (scores[id] - max) * invT - Math.log(keptMass) });
  if (params.topP < 1) {
    const buckets = workspace && workspace.vocabSize === V ? workspace.buckets : new Uint8Array(V);
    const kept = nucleus(scores, weights, buckets, max, invT, params.topP * total).filter((i) => weights[i] >= floor);
    const { id, sum } = walk(kept, weights, rng);
    return draw(id, sum);
  }
  let sum = total;
  if (floor > 0) {
    sum = 0;
    for (let i = 0; i < V; i++) if (weights[i] >= floor) sum += weights[i];
  }
  let u = rng.next() * sum;
  let last = -1;
  for (let i = 0; i < V; i++) {
    const w = weights[i];
    if (w < floor || w === 0) continue;
    last = i;
    u -= w;
    if (u < 0) return draw(i, sum);
  }
  return draw(last, sum);
}

/** Samples among `ids` in proportion to their weights; `sum` is their total weight. */
function walk(ids: number[], weights: Float32Array, rng: Rng): { id: number; sum: number } {
  let sum = 0;
  for (const i of ids) sum += weights[i];
  let u = rng.next() * sum;
  for (const i of ids) {
    u -= weights[i];
    if (u < 0) return { id: i, sum };
  }
  return { id: ids[ids.length - 1], sum };
}

/** top-k candidates (sorted, largest first): temperature, then top-p and min-p over them, then a draw. */
function sampleFromSorted(scores: Float32Array, sorted: number[], params: Required<SamplingParams>, rng: Rng): Draw {
  const invT = 1 / params.temperature;
  const max = scores[sorted[0]];
  const w = sorted.map((i) => Math.exp((scores[i] - max) * invT));
  const total = w.reduce((a, b) => a + b, 0);
  let end = sorted.length;
  if (params.topP < 1) {
    // Keep a token while the mass strictly before it is below top_p (transformers keeps at least one).
    let before = 0;
    for (let r = 0; r < sorted.length; r++) {
      if (r > 0 && before >= params.topP * total) {
        end = r;
        break;
      }
      before += w[r];
    }
  }
  let sum = 0;
  for (let r = 0; r < end; r++) if (w[r] >= params.minP) sum += w[r];
  let u = rng.next() * sum;
  let last = 0;
  for (let r = 0; r < end; r++) {
    if (w[r] < params.minP) continue;
    last = r;
    u -= w[r];
    if (u < 0) break;
  }
  return { id: sorted[last], sampledLogprob: Math.log(w[last]) - Math.log(sum) };
}

/**
 * The top-p nucleus without sorting the vocabulary: tokens are bucketed by log-weight (quarter-nat wide
 * buckets, which order the tokens), whole buckets are kept while the mass before them is below `mass`,
 * and only the bucket where the mass crosses it is sorted. Exact: the same set a full sort keeps.
 */
function nucleus(scores: Float32Array, weights: Float32Array, buckets: Uint8Array, max: number, invT: number, mass: number): number[] {
  const BUCKETS = 256;
  const perNat = 4 * invT; // quarter-nat buckets of the tempered logit
  const bucketMass = new Float64Array(BUCKETS);
  for (let i = 0; i < scores.length; i++) {
    const b = Math.min(BUCKETS - 1, Math.floor((max - scores[i]) * perNat));
    buckets[i] = b;
    bucketMass[b] += weights[i];
  }
  let crossing = 0;
  let before = 0;
  while (crossing < BUCKETS - 1 && before + bucketMass[crossing] < mass) before += bucketMass[crossing++];
  const kept: number[] = [];
  const boundary: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (weights[i] === 0) continue;
    const b = buckets[i];
    if (b < crossing) kept.push(i);
    else if (b === crossing) boundary.push(i);
  }
  boundary.sort((a, b) => scores[b] - scores[a] || a - b);
  for (const i of boundary) {
    if (kept.length > 0 && before >= mass) break;
    kept.push(i);
    before += weights[i];
  }
  return kept;
}
