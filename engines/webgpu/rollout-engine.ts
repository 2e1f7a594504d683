// The WebGPU rollout engine: a decode loop that stays on the GPU. Cache slots are preallocated and written
// in place; a prompt is prefilled once into one slot and its prefix copied to the slots of its other
// completions; every decode step (all layers, the lm_head and the sampler) is the same list of dispatches
// with bind groups made once, and `chunk` steps are recorded into one command buffer before the token ids
// come back (stop strings are checked on the host then). A finished sequence frees its slot for the next
// waiting completion between chunks (continuous batching). Sampling is on the GPU (decode/sampler.ts).
import type { PolicyWeights, RolloutEngine, SampledRows, SampleHooks, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import { rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { validateSamplingParams } from '../../core/llm/sampling.js';
import type { StopMatcher, Tokenizer } from '../../core/llm/tokenizer.js';
import type { FinishReason } from '../../core/engine/interfaces.js';
import { Rng } from '../../core/rng.js';
import type { Dispatch, GpuContext } from './device.js';
import { NO_SLOT } from './decode/attention.js';
import { DecoderPass, DecoderWeights, KvCache, ropeTables, type DecoderConfig, type HostParameters, type LoraLayout, type LoraWeights } from './decode/decoder.js';
import type { WeightPrecision } from './decode/linear.js';
import { INFO, Sampler, TokenLogprob, seenWords } from './decode/sampler.js';

export interface WebGpuEngineSetup {
  config: DecoderConfig & { eosTokenIds: number[]; maxPositionEmbeddings: number };
  /** Base weights by checkpoint name. */
  parameters: HostParameters;
  /** The LoRA adapter's layout and, optionally, its weights now. */
  lora?: LoraLayout & { weights?: LoraWeights };
  precision: WeightPrecision;
  tokenizer?: Tokenizer;
  /** Decode steps recorded per command buffer before the ids are read back. Default 16. */
  chunk?: number;
  /** Rows per prefill/score launch. Default 64. */
  prefillRows?: number;
  /** Sequences decoded together when the caller gives no maxBatch. Default 64. */
  defaultBatch?: number;
  version?: number;
}

/** Buffers and passes for `slots` sequences of up to `maxLength` tokens, made once and reused. */
interface Workspace {
  slots: number;
  maxLength: number;
  cache: KvCache;
  rope: { cos: GPUBuffer; sin: GPUBuffer };
  state: { slot: GPUBuffer; pos: GPUBuffer; token: GPUBuffer; info: GPUBuffer; seen: GPUBuffer; outIds: GPUBuffer; outLogprobs: GPUBuffer };
  decode: DecoderPass;
  prefillRows: { slot: GPUBuffer; pos: GPUBuffer; token: GPUBuffer; target: GPUBuffer; logprobs: GPUBuffer };
  prefill: DecoderPass;
  staging: GPUBuffer;
  owned: GPUBuffer[];
}

interface Sequence {
  request: number;
  slot: number;
  ids: number[];
  logprobs: number[];
  stop?: StopMatcher;
}

class AbortError extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? `generation aborted: ${reason.message}` : 'generation aborted');
    this.name = 'AbortError';
  }
}

const u32 = (values: ArrayLike<number>) => Uint32Array.from(values);

/** Records dispatches into one compute pass of `encoder`, leaving it open for copies after them. */
function record(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): void {
  const pass = encoder.beginComputePass();
  let bound: GPUComputePipeline | null = null;
  for (const d of dispatches) {
    if (d.pipeline !== bound) pass.setPipeline((bound = d.pipeline));
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
  }
  pass.end();
}

export class WebGpuRolloutEngine implements RolloutEngine {
  readonly name = 'webgpu';
  private version: number;
  private queue: Promise<unknown> = Promise.resolve();
  private workspace?: Workspace;
  private readonly chunk: number;
  private readonly prefillRowCount: number;

  private constructor(
    readonly ctx: GpuContext,
    readonly weights: DecoderWeights,
    private readonly setup: WebGpuEngineSetup,
  ) {
    this.version = setup.version ?? 0;
    this.chunk = setup.chunk ?? 16;
    this.prefillRowCount = setup.prefillRows ?? 64;
  }

  static async create(ctx: GpuContext, setup: WebGpuEngineSetup): Promise<WebGpuRolloutEngine> {
    const weights = new DecoderWeights(ctx, setup.config, setup.precision, setup.lora, setup.parameters);
    if (setup.lora?.weights) weights.setLora(setup.lora.weights, 'initial adapter');
    return new WebGpuRolloutEngine(ctx, weights, setup);
  }

  get policyVersion(): number {
    return this.version;
  }

  setWeights(policy: PolicyWeights): Promise<void> {
    return this.inTurn(async () => {
      if (Object.keys(policy.weights).length > 0) this.weights.setLora(policy.weights, `policy version ${policy.version}`);
      this.version = policy.version;
    });
  }

  sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal, hooks: SampleHooks = {}): Promise<SampledRows> {
    return this.inTurn(() => this.sampleNow(prompts, n, options, signal, hooks));
  }

  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return this.inTurn(() => this.scoreNow(rows, options));
  }

  close(): Promise<void> {
    return this.inTurn(async () => {
      this.dropWorkspace();
    });
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private dropWorkspace(): void {
    if (!this.workspace) return;
    this.workspace.cache.destroy();
    this.workspace.decode.destroy();
    this.workspace.prefill.destroy();
    for (const b of this.workspace.owned) b.destroy();
    this.workspace = undefined;
  }

  /** A workspace with at least `slots` slots of `maxLength` positions (the current one when it fits). */
  private async workspaceFor(slots: number, maxLength: number): Promise<Workspace> {
    const w = this.workspace;
    if (w && w.slots >= slots && w.maxLength >= maxLength) return w;
    slots = Math.max(slots, w?.slots ?? 0);
    maxLength = Math.max(maxLength, w?.maxLength ?? 0);
    this.dropWorkspace();
    const ctx = this.ctx;
    const c = this.setup.config;
    const owned: GPUBuffer[] = [];
    const keep = (b: GPUBuffer) => (owned.push(b), b);
    const words = (n: number) => keep(ctx.storage(n * 4));
    const cache = new KvCache(ctx, c, slots, maxLength);
    const rope = ropeTables(ctx, c, maxLength);
    owned.push(rope.cos, rope.sin);
    const state = {
      slot: keep(ctx.upload(u32(Array.from({ length: slots }, (_, i) => i)))),
      pos: words(slots),
      token: words(slots),
      info: keep(ctx.upload(new Uint32Array(slots * INFO.words))),
      seen: words(slots * seenWords(c.vocabSize)),
      outIds: words(slots * this.chunk),
      outLogprobs: words(slots * this.chunk),
    };
    const R = this.prefillRowCount;
    const prefillRows = { slot: words(R), pos: words(R), token: words(R), target: words(R), logprobs: words(R) };
    const [decode, prefill] = await Promise.all([
      DecoderPass.create(ctx, this.weights, slots, state, cache, rope),
      DecoderPass.create(ctx, this.weights, R, prefillRows, cache, rope),
    ]);
    const staging = keep(ctx.device.createBuffer({ size: (2 * slots * this.chunk + slots * INFO.words) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    this.workspace = { slots, maxLength, cache, rope, state, decode, prefillRows, prefill, staging, owned };
    return this.workspace;
  }

  private write(buffer: GPUBuffer, offsetWords: number, data: Uint32Array | Float32Array): void {
    this.ctx.device.queue.writeBuffer(buffer, offsetWords * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Runs rows [start, start + tokens.length) of `tokens` (positions `first`…) through the prefill pass into `slot`;
   *  with `scoring`, also the tail and the log-prob of each row's `targets` entry (NO_SLOT: none). */
  private runPrefill(w: Workspace, slot: number, first: number, tokens: ArrayLike<number>, targets?: { ids: ArrayLike<number>; scorer: TokenLogprob; into: GPUBuffer; at: number; from: number }): void {
    const R = this.prefillRowCount;
    const n = tokens.length;
    const rows = w.prefillRows;
    this.write(rows.slot, 0, u32(Array.from({ length: R }, (_, i) => (i < n ? slot : NO_SLOT))));
    this.write(rows.pos, 0, u32(Array.from({ length: R }, (_, i) => first + Math.min(i, n - 1))));
    this.write(rows.token, 0, u32(Array.from({ length: R }, (_, i) => (i < n ? tokens[i] : 0))));
    const dispatches = [...w.prefill.layers];
    if (targets) {
      this.write(rows.target, 0, u32(Array.from({ length: R }, (_, i) => (i < n ? targets.ids[i] : NO_SLOT))));
      dispatches.push(...w.prefill.tail, targets.scorer.dispatch(w.prefill.logits, rows.target, rows.logprobs));
    }
    const encoder = this.ctx.device.createCommandEncoder();
    record(encoder, dispatches);
    if (targets && targets.from < n) encoder.copyBufferToBuffer(rows.logprobs, targets.from * 4, targets.into, targets.at * 4, (n - targets.from) * 4);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  private async sampleNow(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal: AbortSignal | undefined, hooks: SampleHooks): Promise<SampledRows> {
    const started = performance.now();
    const c = this.setup.config;
    const sampling = validateSamplingParams(options);
    if (!Number.isInteger(n) || n < 1) throw new Error(`webgpu engine: completions per prompt must be a whole number ≥ 1, got ${n}`);
    const maxNew = options.maxNewTokens;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`webgpu engine: maxNewTokens must be a whole number ≥ 0, got ${maxNew}`);
    const logprobTemperature = options.logprobTemperature ?? 1;
    if (!(logprobTemperature > 0)) throw new Error(`webgpu engine: logprobTemperature must be > 0, got ${logprobTemperature}`);
    const promptLists = prompts.map((p, i) => {
      const ids = Array.from(p);
      if (ids.length === 0) throw new Error(`webgpu engine: prompt ${i} is empty`);
      for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`webgpu engine: prompt ${i} has token ${id}, outside the vocabulary [0, ${c.vocabSize})`);
      if (ids.length + maxNew > c.maxPositionEmbeddings) throw new Error(`webgpu engine: prompt ${i} (${ids.length} tokens) plus ${maxNew} new tokens exceeds the model's ${c.maxPositionEmbeddings} positions`);
      return ids;
    });
    const tokenizer = this.setup.tokenizer;
    const stops = options.stop ?? [];
    if (stops.length && !tokenizer) throw new Error('webgpu engine: stop strings need a tokenizer');
    const requests = promptLists.flatMap((ids) => Array.from({ length: n }, () => ids));
    const seedRng = new Rng(options.seed ?? 0);
    const seeds = requests.map(() => [seedRng.nextUint32(), seedRng.nextUint32()]);
    const eos = options.eosTokenIds ?? c.eosTokenIds;
    const eosSet = new Set(eos);

    const results: { ids: number[]; logprobs: number[]; finishReason: FinishReason }[] = new Array(requests.length);
    const finish = (seq: Sequence, reason: FinishReason) => {
      results[seq.request] = { ids: seq.ids, logprobs: seq.logprobs, finishReason: reason };
      hooks.onFinished?.();
    };
    const waiting: number[] = [];
    requests.forEach((_, i) => {
      if (maxNew > 0) waiting.push(i);
      else finish({ request: i, slot: -1, ids: [], logprobs: [] }, 'length');
    });

    if (waiting.length > 0) {
      const slots = Math.min(options.maxBatch ?? this.setup.defaultBatch ?? 64, waiting.length);
      if (!Number.isInteger(slots) || slots < 1) throw new Error(`webgpu engine: maxBatch must be a whole number ≥ 1, got ${options.maxBatch}`);
      const maxLength = Math.max(...promptLists.map((p) => p.length)) + maxNew;
      const w = await this.workspaceFor(slots, maxLength);
      const sampler = await Sampler.create(this.ctx, {
        slots: w.slots,
        vocab: c.vocabSize,
        chunk: this.chunk,
        temperature: sampling.temperature,
        topK: sampling.topK,
        topP: sampling.topP,
        minP: sampling.minP,
        repetitionPenalty: sampling.repetitionPenalty,
        logprobScale: 1 / logprobTemperature,
        eosTokenIds: eos,
      });
      this.weights.setAdapters(true);
      await this.decodeLoop(w, sampler, { requests, seeds, waiting, maxNew, slots, eosSet, stops, penalty: sampling.repetitionPenalty !== 1, signal, finish });
    }
    const rows = rowsOf(
      requests,
      results.map((r) => r.ids),
      requests.map((_, i) => Math.floor(i / n)),
    );
    const logprobs = new Float32Array(rows.completionIds.length);
    results.forEach((r, i) => logprobs.set(r.logprobs, rows.completionOffsets[i]));
    const texts = results.map((r) => {
      if (!tokenizer) return '';
      const text = tokenizer.decode(r.ids, { skipSpecialTokens: true });
      return stops.length ? tokenizer.stopMatcher(stops).cut(text) : text;
    });
    let refLogprobs: Float32Array | undefined;
    if (options.reference) refLogprobs = await this.scoreNow(rows, { adapters: 'off', temperature: options.reference.temperature });
    return {
      ...rows,
      logprobs,
      refLogprobs,
      finishReasons: results.map((r) => r.finishReason),
      texts,
      policyVersion: this.version,
      seconds: (performance.now() - started) / 1000,
    };
  }

  private async decodeLoop(
    w: Workspace,
    sampler: Sampler,
    job: {
      requests: number[][];
      seeds: number[][];
      waiting: number[];
      maxNew: number;
      slots: number;
      eosSet: Set<number>;
      stops: string[];
      penalty: boolean;
      signal?: AbortSignal;
      finish: (seq: Sequence, reason: FinishReason) => void;
    },
  ): Promise<void> {
    const ctx = this.ctx;
    const c = this.setup.config;
    const VW = seenWords(c.vocabSize);
    const info = new Uint32Array(w.slots * INFO.words);
    const free = Array.from({ length: job.slots }, (_, i) => job.slots - 1 - i);
    const active = new Map<number, Sequence>();
    const waiting = [...job.waiting].reverse();
    const step = [...w.decode.layers, ...w.decode.tail, sampler.dispatch({ logits: w.decode.logits, ...w.state })];
    const CH = this.chunk;
    const S = w.slots;
    const tokenizer = this.setup.tokenizer;

    const release = (seq: Sequence, reason: FinishReason) => {
      active.delete(seq.slot);
      info[seq.slot * INFO.words + INFO.active] = 0;
      free.push(seq.slot);
      job.finish(seq, reason);
    };

    while (waiting.length > 0 || active.size > 0) {
      // Macrotask turn: timers, I/O and Ctrl-C get a chance between chunks.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (job.signal?.aborted) throw new AbortError(job.signal.reason);
      // Start waiting completions in free slots; completions of one prompt share one prefill.
      const starting: Sequence[] = [];
      while (waiting.length > 0 && free.length > 0) {
        const request = waiting.pop()!;
        const seq: Sequence = { request, slot: free.pop()!, ids: [], logprobs: [], stop: job.stops.length && tokenizer ? tokenizer.stopMatcher(job.stops) : undefined };
        starting.push(seq);
        active.set(seq.slot, seq);
      }
      const groups = new Map<number[], Sequence[]>();
      for (const seq of starting) {
        const prompt = job.requests[seq.request];
        const group = groups.get(prompt);
        if (group) group.push(seq);
        else groups.set(prompt, [seq]);
      }
      for (const [prompt, group] of groups) {
        const prefix = prompt.length - 1;
        const home = group[0].slot;
        for (let at = 0; at < prefix; at += this.prefillRowCount) this.runPrefill(w, home, at, prompt.slice(at, Math.min(prefix, at + this.prefillRowCount)));
        if (group.length > 1) {
          const encoder = ctx.device.createCommandEncoder();
          w.cache.copyPrefix(encoder, home, group.map((seq) => seq.slot), prefix);
          ctx.device.queue.submit([encoder.finish()]);
        }
        for (const seq of group) {
          const s = seq.slot;
          this.write(w.state.token, s, u32([prompt[prefix]]));
          this.write(w.state.pos, s, u32([prefix]));
          const o = s * INFO.words;
          info.fill(0, o, o + INFO.words);
          info[o + INFO.active] = 1;
          info[o + INFO.maxNew] = job.maxNew;
          info[o + INFO.seed0] = job.seeds[seq.request][0];
          info[o + INFO.seed1] = job.seeds[seq.request][1];
          if (job.penalty) {
            const bits = new Uint32Array(VW);
            for (const id of prompt) bits[id >>> 5] |= 1 << (id & 31);
            this.write(w.state.seen, s * VW, bits);
          }
        }
      }
      if (active.size === 0) continue;
      // As many steps as the longest-running active sequence can still use, at most a chunk.
      let steps = 0;
      for (const seq of active.values()) steps = Math.max(steps, job.maxNew - seq.ids.length);
      steps = Math.min(CH, steps);
      for (let s = 0; s < S; s++) info[s * INFO.words + INFO.written] = 0;
      this.write(w.state.info, 0, info);
      const encoder = ctx.device.createCommandEncoder();
      const dispatches = [];
      for (let i = 0; i < steps; i++) dispatches.push(...step);
      record(encoder, dispatches);
      const idsBytes = S * CH * 4;
      encoder.copyBufferToBuffer(w.state.outIds, 0, w.staging, 0, idsBytes);
      encoder.copyBufferToBuffer(w.state.outLogprobs, 0, w.staging, idsBytes, idsBytes);
      encoder.copyBufferToBuffer(w.state.info, 0, w.staging, 2 * idsBytes, S * INFO.words * 4);
      ctx.device.queue.submit([encoder.finish()]);
      await ctx.finish();
      await ctx.settle(w.staging.mapAsync(GPUMapMode.READ));
      const raw = w.staging.getMappedRange();
      const outIds = new Uint32Array(raw.slice(0, idsBytes));
      const outLogprobs = new Float32Array(raw.slice(idsBytes, 2 * idsBytes));
      info.set(new Uint32Array(raw.slice(2 * idsBytes, 2 * idsBytes + S * INFO.words * 4)));
      w.staging.unmap();
      if (![...active.values()].some((seq) => info[seq.slot * INFO.words + INFO.written] > 0)) {
        throw new Error(`webgpu engine: a chunk of ${steps} decode steps sampled no token in any of ${active.size} active slots (the GPU work failed)`);
      }
      for (const seq of [...active.values()]) {
        const o = seq.slot * INFO.words;
        const written = info[o + INFO.written];
        let reason: FinishReason | undefined;
        for (let i = 0; i < written && !reason; i++) {
          const id = outIds[seq.slot * CH + i];
          seq.ids.push(id);
          seq.logprobs.push(outLogprobs[seq.slot * CH + i]);
          if (job.eosSet.has(id)) reason = 'eos';
          else if (seq.stop?.check(seq.ids)) reason = 'stop';
          else if (seq.ids.length >= job.maxNew) reason = 'length';
        }
        if (reason) release(seq, reason);
        else if (info[o + INFO.active] === 0) throw new Error(`webgpu engine: slot ${seq.slot} stopped on the GPU after ${seq.ids.length} tokens with no eos or length on the host`);
      }
    }
  }

  private async scoreNow(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    const c = this.setup.config;
    if (!(options.temperature > 0)) throw new Error(`webgpu engine: score temperature must be > 0, got ${options.temperature}`);
    const count = rows.group.length;
    const total = rows.completionOffsets[count];
    const out = new Float32Array(total);
    if (total === 0) return out;
    let longest = 0;
    for (let i = 0; i < count; i++) {
      longest = Math.max(longest, rows.promptOffsets[i + 1] - rows.promptOffsets[i] + rows.completionOffsets[i + 1] - rows.completionOffsets[i]);
    }
    const w = await this.workspaceFor(1, longest);
    const scorer = await TokenLogprob.create(this.ctx, { rows: this.prefillRowCount, vocab: c.vocabSize, scale: 1 / options.temperature });
    const results = this.ctx.storage(total * 4);
    this.weights.setAdapters(options.adapters === 'on');
    try {
      for (let i = 0; i < count; i++) {
        const prompt = rows.promptIds.subarray(rows.promptOffsets[i], rows.promptOffsets[i + 1]);
        const completion = rows.completionIds.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
        if (completion.length === 0) continue;
        const tokens = [...prompt, ...completion];
        const P = prompt.length;
        // Row j predicts token j + 1; completion token k is predicted by row P − 1 + k.
        const last = tokens.length - 1;
        const R = this.prefillRowCount;
        for (let at = 0; at < last; at += R) {
          const chunk = tokens.slice(at, Math.min(last, at + R));
          const targets = chunk.map((_, j) => (at + j >= P - 1 ? tokens[at + j + 1] : NO_SLOT));
          const from = Math.max(0, P - 1 - at);
          this.runPrefill(w, 0, at, chunk, { ids: targets, scorer, into: results, at: rows.completionOffsets[i] + at + from - (P - 1), from });
        }
      }
      out.set(new Float32Array(await this.ctx.read(results, total * 4)));
    } finally {
      this.weights.setAdapters(true);
      results.destroy();
    }
    return out;
  }
}
