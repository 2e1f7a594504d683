// Batched generation with continuous batching over a KV cache: up to `maxBatch` sequences decode together;
// when one finishes it frees its cache slot and the next waiting prompt is prefilled into it, so short and
// long completions do not stall each other.
import { tf } from './tf.js';
import { Rng } from '../../core/rng.js';
import type { FinishReason } from '../../core/ports.js';
import { SamplingWorkspace, sampleToken, validateSamplingParams, type SamplingParams } from '../../core/llm/sampling.js';
import type { StopMatcher, Tokenizer } from '../../core/llm/tokenizer.js';

/** What generation needs from a model: `CausalLM` (model.ts) satisfies it. */
export interface GenerationModel<Cache = unknown> {
  readonly config: { vocabSize: number; eosTokenIds?: number[] };
  newCache(slots: number, maxLength: number): Cache;
  prefill(cache: Cache, slot: number, ids: number[]): tf.Tensor1D;
  prefillMany?(cache: Cache, slots: number[], prompts: number[][]): tf.Tensor2D;
  decode(cache: Cache, slots: number[], tokens: number[]): tf.Tensor2D;
  /** Makes slot `to[i]` hold what slot `from[i]` holds (a prompt prefilled once for several sequences). */
  copySlots?(cache: Cache, from: number[], to: number[]): void;
  release(cache: Cache, slot: number): void;
  disposeCache(cache: Cache): void;
}

export interface GenerationRequest {
  promptIds: number[];
  maxNewTokens: number;
  /** Stop strings (need `tokenizer` in the options). */
  stop?: string[];
  /** Overrides the per-request seed derived from `options.seed`. */
  seed?: number;
  /** The request's own generator (overrides `seed`). */
  rng?: Rng;
}

export interface GenerateOptions extends SamplingParams {
  /** Cache slots: how many sequences decode together. Default 8. */
  maxBatch?: number;
  /** Seeds one RNG per request (drawn in request order), so results do not depend on batching. Default 0. */
  seed?: number;
  /** Ids that end a sequence; default the model config's `eosTokenIds`. */
  eosTokenIds?: number[];
  /** Needed for stop strings and to fill `text`. */
  tokenizer?: Tokenizer;
  /** Stop strings for every request (added to each request's own). */
  stop?: string[];
  signal?: AbortSignal;
  /**
   * The temperature of the recorded log-probs: log p = log_softmax(logits / T). Default 1, the raw
   * logits (what `grpoflow generate --json` reports). The GRPO generator passes its sampling temperature,
   * so behaviour log-probs are of the distribution the trainer also computes (TRL divides by it too).
   */
  logprobTemperature?: number;
  /**
   * Which log-probs to record: 'tempered' (default), log_softmax(logits / logprobTemperature); 'sampled', the
   * log-prob under the distribution each token was actually drawn from (after the repetition penalty,
   * temperature, top-k, top-p and min-p): the behaviour log-probs a rollout engine returns (SamplingOptions).
   */
  logprobMode?: 'tempered' | 'sampled';
  onToken?: (requestIndex: number, token: { id: number; logprob: number }) => void;
  onFinish?: (requestIndex: number, result: GenerationResult) => void;
}

export interface GenerationResult {
  /**
   * Generated ids. They include the eos token when the sequence ended on one, and, on a stop string, every
   * token up to and including the one that completed it (the token may carry text past the stop string).
   */
  ids: number[];
  /** log p(ids[i]) as `logprobMode` says: under log_softmax(logits / logprobTemperature) by default (the
   *  unmodified logits at temperature 1), or under the distribution it was drawn from. */
  logprobs: number[];
  /** Decoded `ids` without special tokens, cut before the first stop string (when a tokenizer is given). */
  text?: string;
  finishReason: FinishReason;
}

interface Sequence {
  request: number;
  slot: number;
  ids: number[];
  logprobs: number[];
  seen: Set<number>;
  rng: Rng;
  stop?: StopMatcher;
}

class AbortError extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? `generation aborted: ${reason.message}` : 'generation aborted');
    this.name = 'AbortError';
  }
}

/** Each prompt repeated `groupSize` times in a row (GRPO samples G completions per prompt). */
export function repeatForGroups<T>(items: readonly T[], groupSize: number): T[] {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`group size must be a whole number ≥ 1, got ${groupSize}`);
  return items.flatMap((item) => Array.from({ length: groupSize }, () => item));
}

/** Samples `groupSize` completions per request; result `[request][member]`. */
export async function sampleGroups<Cache>(
  model: GenerationModel<Cache>,
  requests: readonly GenerationRequest[],
  groupSize: number,
  options: GenerateOptions = {},
): Promise<GenerationResult[][]> {
  const flat = await generate(model, repeatForGroups(requests, groupSize), options);
  return requests.map((_, i) => flat.slice(i * groupSize, (i + 1) * groupSize));
}

function validateRequests(requests: readonly GenerationRequest[], vocabSize: number, hasTokenizer: boolean, extraStops: number): void {
  requests.forEach((r, i) => {
    const where = `generate: request ${i}`;
    if (!r || !Array.isArray(r.promptIds) || r.promptIds.length === 0) throw new Error(`${where}: promptIds must be a non-empty list`);
    for (const id of r.promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`${where}: prompt token ${id} is outside the vocabulary [0, ${vocabSize})`);
    }
    if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 0) throw new Error(`${where}: maxNewTokens must be a whole number ≥ 0, got ${r.maxNewTokens}`);
    if (((r.stop?.length ?? 0) > 0 || extraStops > 0) && !hasTokenizer) throw new Error(`${where}: stop strings need a tokenizer in the options`);
  });
}

export async function generate<Cache>(
  model: GenerationModel<Cache>,
  requests: readonly GenerationRequest[],
  options: GenerateOptions = {},
): Promise<GenerationResult[]> {
  const sampling = validateSamplingParams(options);
  const maxBatch = options.maxBatch ?? 8;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`generate: maxBatch must be a whole number ≥ 1, got ${maxBatch}`);
  const vocabSize = model.config.vocabSize;
  const tokenizer = options.tokenizer;
  validateRequests(requests, vocabSize, tokenizer !== undefined, options.stop?.length ?? 0);
  const eos = new Set(options.eosTokenIds ?? model.config.eosTokenIds ?? []);

  const results: (GenerationResult | undefined)[] = new Array(requests.length);
  const seedRng = new Rng(options.seed ?? 0);
  const rngs = requests.map((r) => r.rng ?? (r.seed === undefined ? seedRng.fork() : new Rng(r.seed)));

  const finish = (seq: Sequence, finishReason: FinishReason) => {
    let text: string | undefined;
    if (tokenizer) {
      text = tokenizer.decode(seq.ids, { skipSpecialTokens: true });
      if (seq.stop) text = seq.stop.cut(text);
    }
    const result: GenerationResult = { ids: seq.ids, logprobs: seq.logprobs, text, finishReason };
    results[seq.request] = result;
    options.onFinish?.(seq.request, result);
  };

  // Requests with nothing to generate finish without touching the model.
  const waiting: number[] = [];
  requests.forEach((r, i) => {
    if (r.maxNewTokens > 0) waiting.push(i);
    else {
      const empty = { ids: [], logprobs: [], text: tokenizer ? '' : undefined, finishReason: 'length' as const };
      results[i] = empty;
      options.onFinish?.(i, empty);
    }
  });
  if (waiting.length === 0) return results as GenerationResult[];
  waiting.reverse(); // pop() takes requests in order

  const slots = Math.min(maxBatch, waiting.length);
  const maxLength = Math.max(...waiting.map((i) => requests[i].promptIds.length + requests[i].maxNewTokens));
  const workspace = new SamplingWorkspace(vocabSize);
  const active = new Map<number, Sequence>();
  const logprobTemperature = options.logprobTemperature ?? 1;
  if (!(logprobTemperature > 0)) throw new Error(`generate: logprobTemperature must be > 0, got ${logprobTemperature}`);
  const logprobScale = 1 / logprobTemperature;
  const sampledMode = options.logprobMode === 'sampled';
  const read = (logits: tf.Tensor1D | tf.Tensor2D) => readLogits(logits, logprobScale);
  const freeSlots = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  const cache = model.newCache(slots, maxLength);

  /** Takes one sampled token; returns whether the sequence is done (and then frees its slot). */
  const accept = (seq: Sequence, row: Float32Array, logNormalizer: number): boolean => {
    const sampled = sampleToken(row, sampling, seq.rng, { seen: seq.seen, logNormalizer, workspace });
    const logprob = sampledMode ? sampled.sampledLogprob : logprobScale === 1 ? sampled.logprob : row[sampled.id] * logprobScale - logNormalizer;
    const token = { id: sampled.id, logprob };
    seq.ids.push(token.id);
    seq.logprobs.push(token.logprob);
    seq.seen.add(token.id);
    options.onToken?.(seq.request, token);
    let reason: FinishReason | undefined;
    if (eos.has(token.id)) reason = 'eos';
    else if (seq.stop?.check(seq.ids)) reason = 'stop';
    else if (seq.ids.length >= requests[seq.request].maxNewTokens) reason = 'length';
    if (!reason) return false;
    finish(seq, reason);
    active.delete(seq.slot);
    model.release(cache, seq.slot);
    freeSlots.push(seq.slot);
    return true;
  };

  const checkAbort = () => {
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
  };

  try {
    while (waiting.length > 0 || active.size > 0) {
      // Backend reads can resolve as microtasks only; without a macrotask turn per step a long
      // generation would starve timers, file I/O and signals (Ctrl-C) for its whole duration.
      await new Promise<void>((resolve) => setImmediate(resolve));
      checkAbort();
      // Fill free slots with waiting prompts; a prompt that finishes at once frees its slot again.
      while (waiting.length > 0 && freeSlots.length > 0) {
        const starting: Sequence[] = [];
        while (waiting.length > 0 && freeSlots.length > 0) {
          const request = waiting.pop()!;
          const r = requests[request];
          const stops = [...(options.stop ?? []), ...(r.stop ?? [])];
          const seq: Sequence = {
            request,
            slot: freeSlots.pop()!,
            ids: [],
            logprobs: [],
            seen: new Set(r.promptIds),
            rng: rngs[request],
            stop: stops.length > 0 && tokenizer ? tokenizer.stopMatcher(stops) : undefined,
          };
          starting.push(seq);
          active.set(seq.slot, seq);
        }
        const { rows, lse } = await prefillRows(model, cache, starting, requests, read);
        checkWidth(rows, starting.length, vocabSize);
        starting.forEach((seq, i) => accept(seq, rows.subarray(i * vocabSize, (i + 1) * vocabSize), lse[i]));
      }
      if (active.size === 0) continue;
      checkAbort();
      const running = [...active.values()];
      const logits = model.decode(
        cache,
        running.map((s) => s.slot),
        running.map((s) => s.ids[s.ids.length - 1]),
      );
      const { rows, lse } = await read(logits);
      checkWidth(rows, running.length, vocabSize);
      running.forEach((seq, i) => accept(seq, rows.subarray(i * vocabSize, (i + 1) * vocabSize), lse[i]));
    }
  } finally {
    model.disposeCache(cache);
  }
  return results as GenerationResult[];
}

function checkWidth(rows: Float32Array, count: number, vocabSize: number): void {
  if (rows.length !== count * vocabSize) {
    throw new Error(`generate: the model returned ${rows.length / count} logits per sequence, but its config says vocab_size ${vocabSize}`);
  }
}

/**
 * Reads a step's logits back (one transfer) with each row's logsumexp computed on the device, so the
 * log-prob of the chosen token costs nothing more on the host. Disposes the logits.
 */
async function readLogits(logits: tf.Tensor1D | tf.Tensor2D, scale = 1): Promise<{ rows: Float32Array; lse: Float32Array }> {
  try {
    const lse = tf.tidy(() => tf.logSumExp(scale === 1 ? logits : tf.mul(logits, scale), -1));
    try {
      const [rows, normalizers] = await Promise.all([logits.data(), lse.data()]);
      return { rows: rows as Float32Array, lse: normalizers as Float32Array };
    } finally {
      lse.dispose();
    }
  } finally {
    logits.dispose();
  }
}

/** The last-position logits of prefilling `starting` into their slots, one tensor (`prefillMany`, or `prefill` for one). */
function prefillLogits<Cache>(model: GenerationModel<Cache>, cache: Cache, starting: Sequence[], requests: readonly GenerationRequest[]): tf.Tensor1D | tf.Tensor2D {
  if (starting.length === 1 || !model.prefillMany) {
    if (starting.length !== 1) throw new Error('generate: copySlots needs prefillMany');
    return model.prefill(cache, starting[0].slot, requests[starting[0].request].promptIds);
  }
  return model.prefillMany(cache, starting.map((s) => s.slot), starting.map((s) => requests[s.request].promptIds));
}

/** Prefills the starting sequences (batched when the model can) and returns their last-position logits, row after row. */
async function prefillRows<Cache>(
  model: GenerationModel<Cache>,
  cache: Cache,
  starting: Sequence[],
  requests: readonly GenerationRequest[],
  read: (logits: tf.Tensor1D | tf.Tensor2D) => Promise<{ rows: Float32Array; lse: Float32Array }>,
): Promise<{ rows: Float32Array; lse: Float32Array }> {
  // Sequences with the same prompt (GRPO's G completions per prompt) share one prefill: the prompt runs
  // once and its cache slot is copied to the others.
  if (starting.length > 1 && model.copySlots) {
    const firstWith = new Map<string, number>();
    const unique: Sequence[] = [];
    const source = starting.map((seq) => {
      const key = requests[seq.request].promptIds.join(',');
      let u = firstWith.get(key);
      if (u === undefined) firstWith.set(key, (u = unique.push(seq) - 1));
      return u;
    });
    if (unique.length < starting.length) {
      const logits = prefillLogits(model, cache, unique, requests);
      const copies = starting.map((seq, i) => [unique[source[i]].slot, seq.slot]).filter(([from, to]) => from !== to);
      model.copySlots(cache, copies.map(([from]) => from), copies.map(([, to]) => to));
      const { rows, lse } = await read(logits);
      const V = rows.length / unique.length;
      const all = new Float32Array(starting.length * V);
      source.forEach((u, i) => all.set(rows.subarray(u * V, (u + 1) * V), i * V));
      return { rows: all, lse: Float32Array.from(source, (u) => lse[u]) };
    }
  }
  if (starting.length > 1 && model.prefillMany) {
    return read(
      model.prefillMany(
        cache,
        starting.map((s) => s.slot),
        starting.map((s) => requests[s.request].promptIds),
      ),
    );
  }
  const parts: { rows: Float32Array; lse: Float32Array }[] = [];
  for (const seq of starting) parts.push(await read(model.prefill(cache, seq.slot, requests[seq.request].promptIds)));
  if (parts.length === 1) return parts[0];
  const V = parts[0].rows.length;
  const rows = new Float32Array(parts.length * V);
  parts.forEach((p, i) => rows.set(p.rows, i * V));
  return { rows, lse: Float32Array.from(parts, (p) => p.lse[0]) };
}
