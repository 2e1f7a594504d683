// The llama.cpp rollout engine (node-llama-cpp 3.21.1's prebuilt binaries; nothing compiled or downloaded).
//
// Weights: the base model is written once, as GGUF of `gguf_type`, from the folder the graph's model was
// loaded from; each policy version's LoRA adapter is written to a fresh adapter GGUF and attached to a
// fresh context. node-llama-cpp caches adapters by path until the model is disposed, so the previous
// adapter is freed by hand once its context is gone (`releaseAdapter`): memory stays flat over versions.
//
// Batching: one context holds `slots` KV streams of `contextSize` cells each (contextSize is per sequence
// in node-llama-cpp 3.x, which gives llama.cpp contextSize × sequences cells). The engine drives the batch
// itself through node-llama-cpp's native context: each step puts the next token of every running
// completion (or the next part of a prompt) into one llama_decode of at most `batchSize` tokens, then
// samples every completion that got logits, each with its own native sampler. With max_batch < rows, a
// finished completion's slot is cleared and takes the next waiting one (continuous batching).
//
// Sampling and behaviour log-probs: llama.cpp samples (its native chain, one sampler per completion,
// seeded from the batch seed in completion order, so rows do not depend on batching): repetition
// penalty, top-k, top-p, min-p, then temperature, then a draw. The behaviour log-prob of a token is the
// log of the `confidence` llama.cpp returns with it: the token's probability in the candidate set the draw
// was made from, i.e. under the truncated, renormalised, temperature-scaled distribution. That is exact
// for what was sampled (no full-vocabulary logits cross into JS per token). Two differences from the tfjs
// sampler (transformers' order) to know: llama.cpp applies top-p and min-p to the temperature-1
// distribution, before the temperature (the same when temperature is 1 or neither is set), and its
// repetition penalty is given every prompt and completion token, as transformers' is. Greedy (temperature
// 0) records log_softmax(logits), as the tfjs engine does.
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import type { FinishReason, PolicyWeights, RolloutEngine, SampledRows, SampleHooks, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import { completionOf, promptOf, rowCount, rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { writeAdapterWeightsGguf, writeModelGguf } from '../../core/gguf/export.js';
import type { ModelConfig } from '../../core/llm/config.js';
import { PEFT_PREFIX } from '../../core/llm/peft-config.js';
import type { StopMatcher, Tokenizer } from '../../core/llm/tokenizer.js';
import { Rng } from '../../core/rng.js';
import { defaultThreads, type LlamaCppOptions } from './options.js';

/** A tensor of the graph's model as the engine reads it once (the adapter as it is at the start). */
interface TensorLike {
  shape: number[];
  data(): Promise<ArrayLike<number>>;
}

/**
 * What the engine reads from the graph's `model` resource (for now the tfjs CausalLM): the folder it was
 * loaded from, its config, and its LoRA adapter's rank, scale and starting weights.
 */
export interface LlamaCppModelSource {
  dir?: string;
  config: ModelConfig;
  lora?: { scale: number; merged?: boolean; config: { r: number }; adapters: Map<string, { A: TensorLike; B: TensorLike }> };
}

/**
 * node-llama-cpp 3.21.1's native context and sampler, below its public API (pinned exactly, so these do not
 * move under us). The public per-sequence generators cost about 0.85 ms of CPU per token in JS machinery
 * (queues, locks, a sampler config rebuilt per token); driving the batch directly costs about 0.3 ms, of
 * which most is llama_decode itself (bench/llama-cpp-rollout.ts).
 */
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: NativeSampler, probabilities: boolean, confidence?: boolean): Promise<[token: number, probabilities: number[] | undefined, confidence: number | undefined]>;
  disposeSequence(sequenceId: number): void;
  setThreads(threads: number): void;
}

interface NativeSampler {
  applyConfig(config: Record<string, unknown>): void;
  dispose(): void;
}

interface OpenContext {
  context: LlamaContext;
  native: NativeContext;
  /** Sequence ids 0 … slots − 1 of the context (node-llama-cpp's own sequence objects are never taken). */
  slots: number;
  /** Tokens one llama_decode takes. */
  batchSize: number;
  /** The adapter file attached (undefined: the base model). */
  adapter?: string;
}

/** One slot's work in a decode: tokens from position `position`, with logits wanted at `logitsAt` (indexes into tokens). */
interface FeedItem {
  slot: number;
  position: number;
  tokens: number[];
  logitsAt: number[];
}

class AbortError extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? reason.message : 'sampling aborted');
    this.name = 'AbortError';
  }
}

const llamas = new Map<string, { llama: Promise<Llama>; users: number }>();

/** One Llama (binary and backend) per gpu setting in the process, shared by engines, disposed with the last. */
async function acquireLlama(gpu: LlamaCppOptions['gpu']): Promise<Llama> {
  const key = String(gpu);
  let entry = llamas.get(key);
  if (!entry) {
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    entry = { llama: getLlama({ gpu, build: 'never', logLevel: LlamaLogLevel.error }), users: 0 };
    llamas.set(key, entry);
    entry.llama.catch(() => llamas.delete(key));
  }
  entry.users++;
  return entry.llama;
}

async function releaseLlama(gpu: LlamaCppOptions['gpu']): Promise<void> {
  const key = String(gpu);
  const entry = llamas.get(key);
  if (!entry || --entry.users > 0) return;
  llamas.delete(key);
  await (await entry.llama).dispose();
}

export class LlamaCppRolloutEngine implements RolloutEngine {
  readonly name = 'llama.cpp';
  private version = 0;
  /** Calls run one at a time, in the order made (weights never change under a sample in progress). */
  private queue: Promise<unknown> = Promise.resolve();
  /** The newest adapter file (undefined: no adapter, the base model samples). */
  private adapterPath?: string;
  private policyContext?: OpenContext;
  private baseContext?: OpenContext;
  /** Adapter files loaded by this model (released when their context goes). */
  private readonly loadedAdapters = new Set<string>();
  private readonly threads: number;
  private readonly kvF32: boolean;
  private closed = false;

  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly source: LlamaCppModelSource,
    private readonly tokenizer: Tokenizer,
    private readonly options: LlamaCppOptions,
    /** Where the base GGUF and the adapter files are written. */
    readonly workDir: string,
    /** The base GGUF's type. */
    readonly ggufType: 'f32' | 'f16' | 'q8_0',
  ) {
    this.threads = options.threads ?? defaultThreads();
    // An f32 model with an f32 KV cache and no flash attention is f32 throughout (log-probs ~2e-6 off transformers).
    this.kvF32 = ggufType === 'f32';
  }

  /** Writes the base GGUF into `workDir`, loads it, and attaches the model's current adapter (version `version`). */
  static async create(args: { source: LlamaCppModelSource; tokenizer: Tokenizer; options: LlamaCppOptions; workDir: string; version?: number }): Promise<LlamaCppRolloutEngine> {
    const { source, options, workDir } = args;
    if (!source.dir) throw new Error('the llama.cpp engine needs a model loaded from a folder (model.load), not one built in memory: it writes the folder as GGUF');
    if (source.lora?.merged) throw new Error('the llama.cpp engine: the LoRA adapter is merged into the weights; unmerge it first');
    const llama = await acquireLlama(options.gpu);
    try {
      // `gpu: auto` loads the Vulkan build wherever libvulkan is, with no device (a CPU-only machine): that
      // computes on the CPU, where f32 is the exact and the fast choice.
      const onGpu = llama.gpu !== false && (await llama.getGpuDeviceNames()).length > 0;
      const ggufType = options.gguf_type ?? (onGpu ? 'f16' : 'f32');
      mkdirSync(workDir, { recursive: true });
      const basePath = join(workDir, `base-${ggufType}.gguf`);
      await writeModelGguf({ modelDir: source.dir, out: basePath, type: ggufType });
      const model = await llama.loadModel({ modelPath: basePath });
      const engine = new LlamaCppRolloutEngine(llama, model, source, args.tokenizer, options, workDir, ggufType);
      engine.version = args.version ?? 0;
      if (source.lora) engine.writeAdapter(engine.version, await initialAdapter(source.lora));
      return engine;
    } catch (error) {
      await releaseLlama(options.gpu);
      throw error;
    }
  }

  /** The binary in use: 'cuda', 'vulkan', 'metal' or false (CPU). */
  get gpu(): string | false {
    return this.llama.gpu;
  }

  get policyVersion(): number {
    return this.version;
  }

  setWeights(policy: PolicyWeights): Promise<void> {
    return this.inTurn(async () => {
      if (Object.keys(policy.weights).length > 0) {
        if (!this.source.lora) throw new Error(`policy version ${policy.version} carries adapter weights, but the model has no LoRA adapter (only LoRA policies can be shipped)`);
        this.writeAdapter(policy.version, policy.weights);
      }
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
      if (this.closed) return;
      this.closed = true;
      for (const open of [this.policyContext, this.baseContext]) if (open) await open.context.dispose();
      this.policyContext = this.baseContext = undefined;
      await this.model.dispose();
      for (const path of this.loadedAdapters) rmSync(path, { force: true });
      if (this.adapterPath) rmSync(this.adapterPath, { force: true });
      await releaseLlama(this.options.gpu);
    });
  }

  /** Memory llama.cpp's context and adapters hold now (for the leak test and benchmarks). */
  get adaptersLoaded(): number {
    return this.loadedAdapters.size;
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.closed) throw new Error('the llama.cpp engine is closed');
      return work();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private writeAdapter(version: number, weights: PolicyWeights['weights']): void {
    const lora = this.source.lora!;
    const path = join(this.workDir, `adapter-v${version}.gguf`);
    writeAdapterWeightsGguf({ config: this.source.config, weights, scale: lora.scale, r: lora.config.r, out: path, type: 'f32', name: `policy v${version}` });
    // An adapter written but never attached (two versions between samples) is not loaded: delete it now.
    if (this.adapterPath && this.adapterPath !== path && !this.loadedAdapters.has(this.adapterPath)) rmSync(this.adapterPath, { force: true });
    this.adapterPath = path;
  }

  /** A context for `slots` sequences of `contextSize` tokens, with the newest adapter or none. */
  private async open(kind: 'policy' | 'base', slots: number, contextSize: number): Promise<OpenContext> {
    const adapter = kind === 'policy' ? this.adapterPath : undefined;
    const current = kind === 'policy' ? this.policyContext : this.baseContext;
    if (current && current.adapter === adapter && current.slots >= slots && current.context.contextSize >= contextSize) return current;
    const same = current && current.adapter === adapter ? current : undefined;
    if (current) {
      await current.context.dispose();
      if (current.adapter && current.adapter !== adapter) await this.releaseAdapter(current.adapter);
    }
    const count = Math.max(slots, same?.slots ?? 0);
    const context = await this.model.createContext({
      sequences: count,
      contextSize: Math.max(contextSize, same?.context.contextSize ?? 0),
      threads: this.threads,
      // llama.cpp's CPU flash attention rounds through f16 (log-probs 3e-3 off transformers at f32; 2e-6 without).
      flashAttention: this.kvF32 ? false : 'auto',
      lora: adapter ? { adapters: [{ filePath: adapter, scale: 1 }] } : undefined,
      ...(this.kvF32 ? { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } : {}),
    });
    if (adapter) this.loadedAdapters.add(adapter);
    const native = (context as unknown as { _ctx?: NativeContext })._ctx;
    if (!native || typeof native.addToBatch !== 'function') throw new Error('node-llama-cpp no longer exposes LlamaContext._ctx: the llama.cpp engine is written against 3.21.1 exactly');
    native.setThreads(this.threads);
    const open: OpenContext = { context, native, slots: count, batchSize: context.batchSize, adapter };
    if (kind === 'policy') this.policyContext = open;
    else this.baseContext = open;
    return open;
  }

  private newSampler(config: Record<string, unknown>): NativeSampler {
    const bindings = (this.llama as unknown as { _bindings?: { AddonSampler?: new (model: unknown) => NativeSampler } })._bindings;
    const nativeModel = (this.model as unknown as { _model?: unknown })._model;
    if (!bindings?.AddonSampler || !nativeModel) throw new Error('node-llama-cpp no longer exposes its AddonSampler: the llama.cpp engine is written against 3.21.1 exactly');
    const sampler = new bindings.AddonSampler(nativeModel);
    sampler.applyConfig(config);
    return sampler;
  }

  /**
   * One llama_decode over what the items feed (at most batchSize tokens; an item that does not fit is
   * fed in part and keeps the rest). Returns, per item fully fed, the batch logit indexes of its logitsAt.
   */
  private async decode(open: OpenContext, items: FeedItem[]): Promise<Map<FeedItem, Uint32Array>> {
    let room = open.batchSize;
    const plan: { item: FeedItem; take: number }[] = [];
    for (const item of items) {
      if (room === 0) break;
      const take = Math.min(room, item.tokens.length);
      plan.push({ item, take });
      room -= take;
    }
    open.native.initBatch(open.batchSize - room);
    const out = new Map<FeedItem, Uint32Array>();
    for (const { item, take } of plan) {
      const whole = take === item.tokens.length;
      const logits = Uint32Array.from(item.logitsAt.filter((i) => i < take));
      const indexes = open.native.addToBatch(item.slot, item.position, Uint32Array.from(item.tokens.slice(0, take)), logits);
      if (whole && logits.length === item.logitsAt.length) out.set(item, indexes);
      else {
        // Fed in part: logits for the part fed now are read by the caller through `partial` (score), the rest later.
        (item as FeedItem & { partial?: Uint32Array }).partial = indexes;
      }
      item.position += take;
      item.tokens = item.tokens.slice(take);
      item.logitsAt = item.logitsAt.filter((i) => i >= take).map((i) => i - take);
    }
    await open.native.decodeBatch();
    return out;
  }

  /**
   * Frees an adapter no context uses any more. node-llama-cpp 3.21.1 keeps every adapter it loaded in the
   * model's `_loraAdapters` (by resolved path) until the model is disposed; disposing the adapter there
   * frees its tensors and removes it from the llama.cpp model.
   */
  private async releaseAdapter(path: string): Promise<void> {
    const cache = (this.model as unknown as { _loraAdapters?: unknown })._loraAdapters;
    if (!(cache instanceof Map)) throw new Error('node-llama-cpp no longer keeps its adapters in LlamaModel._loraAdapters: the llama.cpp engine is written against 3.21.1 exactly');
    const resolved = resolve(process.cwd(), path);
    const adapter = cache.get(resolved) as { dispose(): Promise<void> } | undefined;
    if (adapter) {
      await adapter.dispose();
      cache.delete(resolved);
    }
    this.loadedAdapters.delete(path);
    rmSync(path, { force: true });
  }

  private contextSizeFor(longest: number): number {
    const max = this.options.max_context ?? this.source.config.maxPositionEmbeddings;
    if (longest > max) throw new Error(`the llama.cpp engine: a row of ${longest} tokens does not fit the context of ${max} tokens (max_context / max_position_embeddings)`);
    return longest;
  }

  private async sampleNow(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal: AbortSignal | undefined, hooks: SampleHooks): Promise<SampledRows> {
    const started = performance.now();
    const sampling = checkSampling(options);
    const requests = prompts.flatMap((p) => Array.from({ length: n }, () => Array.from(p)));
    const seeds = new Rng(options.seed ?? 0);
    const requestSeeds = requests.map(() => seeds.nextUint32());
    const ids: number[][] = requests.map(() => []);
    const logprobs: number[][] = requests.map(() => []);
    const finishReasons: FinishReason[] = requests.map(() => 'length');
    const eos = new Set(options.eosTokenIds ?? this.source.config.eosTokenIds);
    const stops = options.stop ?? [];
    const vocabSize = this.source.config.vocabSize;
    for (const [i, r] of requests.entries()) {
      if (r.length === 0) throw new Error(`sample: prompt ${Math.floor(i / n)} is empty`);
      const bad = r.find((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
      if (bad !== undefined) throw new Error(`sample: prompt ${Math.floor(i / n)} has token id ${bad}, outside the vocabulary of ${vocabSize}`);
    }

    if (requests.length > 0 && options.maxNewTokens > 0) {
      const slots = Math.min(options.maxBatch ?? requests.length, requests.length);
      const longest = Math.max(...requests.map((r) => r.length)) + options.maxNewTokens;
      const open = await this.open('policy', slots, this.contextSizeFor(longest));
      const samplerConfig = (seed: number) => ({
        temperature: sampling.temperature,
        // Left out, a sampler is not in llama.cpp's chain (node-llama-cpp's public defaults are top-k 40, top-p 0.95).
        ...(sampling.topK > 0 ? { topK: sampling.topK } : {}),
        ...(sampling.topP < 1 ? { topP: sampling.topP } : {}),
        ...(sampling.minP > 0 ? { minP: sampling.minP } : {}),
        seed,
      });
      const penalty = (i: number) =>
        sampling.repetitionPenalty !== 1
          ? { repeatPenalty: sampling.repetitionPenalty, repeatPenaltyTokens: Uint32Array.from([...requests[i], ...ids[i]]), repeatPenaltyMaxTokens: requests[i].length + options.maxNewTokens }
          : {};
      interface Running extends FeedItem { request: number; sampler: NativeSampler; stop?: StopMatcher }
      const free = Array.from({ length: slots }, (_, k) => slots - 1 - k);
      const running: Running[] = [];
      let next = 0;
      try {
        while (next < requests.length || running.length > 0) {
          if (signal?.aborted) throw new AbortError(signal.reason);
          while (next < requests.length && free.length > 0) {
            const i = next++;
            const slot = free.pop()!;
            open.native.disposeSequence(slot); // the previous completion's KV cells
            running.push({ request: i, slot, position: 0, tokens: requests[i], logitsAt: [requests[i].length - 1], sampler: this.newSampler({ ...samplerConfig(requestSeeds[i]), ...penalty(i) }), stop: stops.length > 0 ? this.tokenizer.stopMatcher(stops) : undefined });
          }
          const fed = await this.decode(open, running);
          const ready = running.filter((r) => fed.has(r));
          const sampled = await Promise.all(
            ready.map((r) => {
              if (sampling.repetitionPenalty !== 1) r.sampler.applyConfig({ ...samplerConfig(requestSeeds[r.request]), ...penalty(r.request) });
              return open.native.sampleToken(fed.get(r)![0], r.sampler, false, true);
            }),
          );
          ready.forEach((r, k) => {
            const [token, , confidence] = sampled[k];
            if (token === -1 || confidence === undefined) throw new Error('the llama.cpp engine: the sampler returned no token');
            const i = r.request;
            ids[i].push(token);
            logprobs[i].push(Math.log(confidence));
            let reason: FinishReason | undefined;
            if (eos.has(token)) reason = 'eos';
            else if (r.stop?.check(ids[i])) reason = 'stop';
            else if (ids[i].length >= options.maxNewTokens) reason = 'length';
            if (reason) {
              finishReasons[i] = reason;
              r.sampler.dispose();
              running.splice(running.indexOf(r), 1);
              free.push(r.slot);
              hooks.onFinished?.();
            } else {
              r.tokens = [token];
              r.logitsAt = [0];
            }
          });
        }
      } finally {
        for (const r of running) r.sampler.dispose();
      }
    } else {
      requests.forEach(() => hooks.onFinished?.());
    }

    const rows = rowsOf(requests, ids, requests.map((_, i) => Math.floor(i / n)));
    const behaviour = new Float32Array(rows.completionIds.length);
    logprobs.forEach((values, i) => behaviour.set(values, rows.completionOffsets[i]));
    const texts = ids.map((row) => {
      const text = this.tokenizer.decode(row, { skipSpecialTokens: true });
      return stops.length > 0 ? this.tokenizer.stopMatcher(stops).cut(text) : text;
    });
    let refLogprobs: Float32Array | undefined;
    if (options.reference) refLogprobs = await this.scoreNow(rows, { adapters: 'off', temperature: options.reference.temperature }, signal);
    return { ...rows, logprobs: behaviour, refLogprobs, finishReasons, texts, policyVersion: this.version, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Per-token log-probs of each row's completion, log_softmax(logits / temperature) as llama.cpp computes
   * them (the full next-token distribution at each completion position). Rows run on the sequences of one
   * context, prefilled together.
   */
  private async scoreNow(rows: Rows, options: ScoreOptions, signal?: AbortSignal): Promise<TokenLogprobs> {
    if (!(options.temperature > 0)) throw new Error(`score: temperature must be > 0, got ${options.temperature}`);
    const count = rowCount(rows);
    const out = new Float32Array(rows.completionIds.length);
    if (count === 0 || out.length === 0) return out;
    let longest = 0;
    for (let i = 0; i < count; i++) longest = Math.max(longest, promptOf(rows, i).length + completionOf(rows, i).length);
    const slots = Math.min(count, options.microBatchSize ?? 16);
    const open = await this.open(options.adapters === 'on' ? 'policy' : 'base', slots, this.contextSizeFor(longest));
    // The full next-token distribution at temperature T: no truncating sampler in the chain.
    const sampler = this.newSampler({ temperature: options.temperature, seed: 0 });
    interface Scoring extends FeedItem { row: number; /** completion tokens scored so far */ done: number; partial?: Uint32Array }
    const free = Array.from({ length: slots }, (_, k) => slots - 1 - k);
    const running: Scoring[] = [];
    let next = 0;
    const read = async (r: Scoring, indexes: Uint32Array) => {
      const completion = completionOf(rows, r.row);
      const values = out.subarray(rows.completionOffsets[r.row], rows.completionOffsets[r.row + 1]);
      for (const index of indexes) {
        const [, probabilities] = await open.native.sampleToken(index, sampler, true, false);
        const k = r.done++;
        values[k] = Math.log(probabilityOf(probabilities!, completion[k]));
      }
    };
    try {
      while (next < count || running.length > 0) {
        if (signal?.aborted) throw new AbortError(signal.reason);
        while (next < count && free.length > 0) {
          const i = next++;
          const prompt = promptOf(rows, i);
          const completion = completionOf(rows, i);
          if (completion.length === 0) continue;
          if (prompt.length === 0) throw new Error(`score: row ${i} has no prompt tokens`);
          const slot = free.pop()!;
          open.native.disposeSequence(slot);
          const tokens = [...prompt, ...completion.subarray(0, -1)];
          // Position p's distribution scores token p + 1: the completion from the prompt's last position on.
          running.push({ row: i, slot, position: 0, tokens, logitsAt: Array.from(completion, (_, k) => prompt.length - 1 + k), done: 0 });
        }
        if (running.length === 0) break;
        const fed = await this.decode(open, running);
        for (const r of [...running]) {
          const indexes = fed.get(r) ?? r.partial;
          r.partial = undefined;
          if (indexes) await read(r, indexes);
          if (r.tokens.length === 0) {
            running.splice(running.indexOf(r), 1);
            free.push(r.slot);
          }
        }
      }
    } finally {
      sampler.dispose();
    }
    return out;
  }
}

/** A token's probability in node-llama-cpp's flat [token, probability, token, probability, …] list. */
function probabilityOf(flat: number[], token: number): number {
  for (let k = 0; k < flat.length; k += 2) if (flat[k] === token) return flat[k + 1];
  throw new Error(`score: token ${token} is not in llama.cpp's distribution`);
}

interface NativeSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

function checkSampling(options: SamplingOptions): NativeSampling {
  const s = { temperature: options.temperature ?? 1, topK: options.topK ?? 0, topP: options.topP ?? 1, minP: options.minP ?? 0, repetitionPenalty: options.repetitionPenalty ?? 1 };
  if (!(s.temperature >= 0)) throw new Error(`sample: temperature must be ≥ 0, got ${s.temperature}`);
  if (!(Number.isInteger(s.topK) && s.topK >= 0)) throw new Error(`sample: topK must be a whole number ≥ 0, got ${s.topK}`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new Error(`sample: topP must be in (0, 1], got ${s.topP}`);
  if (!(s.minP >= 0 && s.minP <= 1)) throw new Error(`sample: minP must be in [0, 1], got ${s.minP}`);
  if (!(s.repetitionPenalty > 0)) throw new Error(`sample: repetitionPenalty must be > 0, got ${s.repetitionPenalty}`);
  if (!(Number.isInteger(options.maxNewTokens) && options.maxNewTokens >= 0)) throw new Error(`sample: maxNewTokens must be a whole number ≥ 0, got ${options.maxNewTokens}`);
  // The behaviour log-probs are of the distribution sampled from; a different temperature for them is not on offer.
  const sampledTemperature = s.temperature > 0 ? s.temperature : 1;
  if (options.logprobTemperature !== undefined && Math.abs(options.logprobTemperature - sampledTemperature) > 1e-9) {
    throw new Error(`sample: the llama.cpp engine records log-probs at the sampling temperature (${sampledTemperature}), not logprobTemperature ${options.logprobTemperature}`);
  }
  return s;
}

/** The adapter weights the model holds now, by PEFT name (read once, when the engine starts). */
async function initialAdapter(lora: NonNullable<LlamaCppModelSource['lora']>): Promise<PolicyWeights['weights']> {
  const out: PolicyWeights['weights'] = {};
  for (const [path, { A, B }] of lora.adapters) {
    out[`${PEFT_PREFIX}${path}.lora_A.weight`] = { shape: [...A.shape], data: Float32Array.from(await A.data()) };
    out[`${PEFT_PREFIX}${path}.lora_B.weight`] = { shape: [...B.shape], data: Float32Array.from(await B.data()) };
  }
  return out;
}
