// The llama.cpp rollout engine (node-llama-cpp 3.21.1's prebuilt binaries; nothing compiled or downloaded).
//
// Weights: the base model is written once, as GGUF of `gguf_type`, from the folder the graph's model was
// loaded from; each policy version's LoRA adapter is written to a fresh adapter GGUF and attached to a
// fresh context. node-llama-cpp caches adapters by path until the model is disposed, so the previous
// adapter is freed by hand once its context is gone (`releaseAdapter`): memory stays flat over versions.
//
// Batching: one context holds `sequences` KV streams of `contextSize` cells each (contextSize is per
// sequence in node-llama-cpp 3.x); every completion runs its own `evaluateWithMetadata` generator on a
// sequence, and the context puts the tokens all running sequences queued in one event-loop turn into one
// llama_decode (at most `batchSize` tokens: longer prefills take several). With max_batch < rows, a
// finished sequence is cleared and takes the next waiting completion (continuous batching).
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
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { FinishReason, PolicyWeights, RolloutEngine, SampledRows, SampleHooks, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import { completionOf, promptOf, rowCount, rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { writeAdapterWeightsGguf, writeModelGguf } from '../../core/gguf/export.js';
import type { ModelConfig } from '../../core/llm/config.js';
import { PEFT_PREFIX } from '../../core/llm/peft-config.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
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

interface OpenContext {
  context: LlamaContext;
  sequences: LlamaContextSequence[];
  /** The adapter file attached (undefined: the base model). */
  adapter?: string;
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
      const ggufType = options.gguf_type ?? (llama.gpu === false ? 'f32' : 'f16');
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

  /** A context for `sequences` sequences of `contextSize` tokens, with the newest adapter or none. */
  private async open(kind: 'policy' | 'base', sequences: number, contextSize: number): Promise<OpenContext> {
    const adapter = kind === 'policy' ? this.adapterPath : undefined;
    const current = kind === 'policy' ? this.policyContext : this.baseContext;
    if (current && current.adapter === adapter && current.sequences.length >= sequences && current.context.contextSize >= contextSize) return current;
    if (current) {
      await current.context.dispose();
      if (current.adapter && current.adapter !== adapter) await this.releaseAdapter(current.adapter);
    }
    const size = Math.max(contextSize, current && current.adapter === adapter ? current.context.contextSize : 0);
    const count = Math.max(sequences, current && current.adapter === adapter ? current.sequences.length : 0);
    const context = await this.model.createContext({
      sequences: count,
      contextSize: size,
      threads: this.threads,
      // llama.cpp's CPU flash attention rounds through f16 (log-probs 3e-3 off transformers at f32; 2e-6 without).
      flashAttention: this.kvF32 ? false : 'auto',
      lora: adapter ? { adapters: [{ filePath: adapter, scale: 1 }] } : undefined,
      ...(this.kvF32 ? { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } : {}),
    });
    if (adapter) this.loadedAdapters.add(adapter);
    const open: OpenContext = { context, sequences: Array.from({ length: count }, () => context.getSequence()), adapter };
    if (kind === 'policy') this.policyContext = open;
    else this.baseContext = open;
    return open;
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
      const { sequences } = await this.open('policy', slots, this.contextSizeFor(longest));
      let next = 0;
      const runSlot = async (sequence: LlamaContextSequence) => {
        while (next < requests.length) {
          const i = next++;
          try {
            finishReasons[i] = await this.generateOne(sequence, requests[i], requestSeeds[i], sampling, options.maxNewTokens, eos, stops, ids[i], logprobs[i], signal);
          } finally {
            await sequence.clearHistory();
          }
          hooks.onFinished?.();
        }
      };
      await Promise.all(sequences.slice(0, slots).map(runSlot));
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

  /** One completion on `sequence`; its tokens and behaviour log-probs go into `ids` and `logprobs`. */
  private async generateOne(
    sequence: LlamaContextSequence,
    prompt: number[],
    seed: number,
    sampling: NativeSampling,
    maxNewTokens: number,
    eos: Set<number>,
    stops: string[],
    ids: number[],
    logprobs: number[],
    signal: AbortSignal | undefined,
  ): Promise<FinishReason> {
    const stop = stops.length > 0 ? this.tokenizer.stopMatcher(stops) : undefined;
    const repeatPenalty =
      sampling.repetitionPenalty !== 1
        ? { punishTokens: () => [...prompt, ...ids] as Token[], penalty: sampling.repetitionPenalty, maxPunishTokens: prompt.length + maxNewTokens }
        : undefined;
    const generator = sequence.evaluateWithMetadata(
      prompt as Token[],
      { confidence: true },
      {
        temperature: sampling.temperature,
        // null leaves a sampler out of llama.cpp's chain (node-llama-cpp's own defaults are top-k 40, top-p 0.95).
        topK: (sampling.topK > 0 ? sampling.topK : null) as number,
        topP: (sampling.topP < 1 ? sampling.topP : null) as number,
        minP: (sampling.minP > 0 ? sampling.minP : null) as number,
        seed,
        repeatPenalty,
        yieldEogToken: true,
      },
    );
    for await (const { token, confidence } of generator) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      ids.push(token);
      logprobs.push(Math.log(confidence));
      if (eos.has(token)) return 'eos';
      if (stop?.check(ids)) return 'stop';
      if (ids.length >= maxNewTokens) return 'length';
    }
    throw new Error('the llama.cpp engine: generation ended without a token (the sampler returned none)');
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
    const { sequences } = await this.open(options.adapters === 'on' ? 'policy' : 'base', slots, this.contextSizeFor(longest));
    let next = 0;
    const runSlot = async (sequence: LlamaContextSequence) => {
      while (next < count) {
        const i = next++;
        if (signal?.aborted) throw new AbortError(signal.reason);
        const prompt = promptOf(rows, i);
        const completion = completionOf(rows, i);
        if (completion.length === 0) continue;
        if (prompt.length === 0) throw new Error(`score: row ${i} has no prompt tokens`);
        const tokens = [...prompt, ...completion];
        const first = prompt.length - 1; // the position whose next-token distribution scores completion[0]
        const input = tokens.slice(0, -1).map((t, p) =>
          p >= first ? ([t, { generateNext: { probabilities: true, options: { temperature: options.temperature, topK: null, topP: null, minP: null } } }] as const) : t,
        );
        try {
          const results = await sequence.controlledEvaluate(input as unknown as Parameters<LlamaContextSequence['controlledEvaluate']>[0]);
          const values = out.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
          for (let k = 0; k < completion.length; k++) {
            const p = results[first + k]?.next.probabilities?.get(completion[k] as Token);
            if (p === undefined) throw new Error(`score: llama.cpp returned no distribution for row ${i}, completion token ${k}`);
            values[k] = Math.log(p);
          }
        } finally {
          await sequence.clearHistory();
        }
      }
    };
    await Promise.all(sequences.slice(0, slots).map(runSlot));
    return out;
  }
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
