// The engine boundary: what a rollout engine and a policy trainer offer, in plain data (flat rows,
// typed arrays, versioned weights). Any engine (tfjs on the main thread or in a worker, a GPU engine,
// llama.cpp, a remote server) plugs in behind these; nothing here imports a tensor library.
import type { TrainStepConfig } from '../grpo/loss-spec.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { Rows, TokenLogprobs, TrainingRows } from './rows.js';

export type FinishReason = 'eos' | 'stop' | 'length';

/** The trainable weights of a policy at one optimiser step (LoRA A/B matrices by PEFT name): what travels on the `policy` edge. */
export interface PolicySnapshot {
  version: number;
  weights: Record<string, { shape: number[]; data: Float32Array }>;
  /**
   * Optimiser steps the trainer takes per rollout batch (its num_iterations; default 1). The generator's
   * staleness bound counts optimiser steps, so it needs this to know which version batch k will meet.
   */
  stepsPerBatch?: number;
  /**
   * Rollout batches the trainer has taken in this run beyond one per training batch (dynamic sampling's
   * extra draws; default 0): batch k of this run is trained as training batch k − extraBatches at the
   * earliest, which is what the staleness bound counts.
   */
  extraBatches?: number;
}

export type PolicyWeights = PolicySnapshot;

/**
 * How a rollout engine samples. The contract every engine keeps (tfjs here; llama.cpp, a server, ...):
 * - the repetition penalty, temperature, top-k, top-p and min-p are applied in transformers' order
 *   (penalty → temperature → top-k → top-p → min-p; core/llm/sampling.ts), 0/1/0 meaning off;
 * - `SampledRows.logprobs` are, with `logprobMode` 'sampled' (the default), the log-prob of each token under
 *   the distribution it was actually drawn from, after every one of those steps (renormalised over the
 *   tokens kept; greedy, which draws from no distribution, reports the raw log-softmax). train.grpo's sampler/trainer correction divides the trainer's
 *   log_softmax(logits / T) by exactly this, so an engine that reports raw or merely tempered log-probs
 *   while truncating makes the correction wrong. An engine that cannot report them must fail, not guess;
 * - 'tempered' asks for log_softmax(logits / logprobTemperature) instead (diagnostics, not GRPO).
 */
export interface SamplingOptions {
  /** Most tokens per completion. */
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Sequences decoded together. */
  maxBatch?: number;
  /** Seeds one generator per completion, drawn in order, so results do not depend on batching. */
  seed?: number;
  /**
   * One seed per prompt: prompt i's n completions come out as `sample([prompts[i]], n, {seed: promptSeeds[i]})`
   * would give them, whatever else is in the call (a server merging requests keeps each request's seed).
   * Overrides `seed`; an engine that ignores it samples from `seed`.
   */
  promptSeeds?: number[];
  eosTokenIds?: number[];
  /** Stop strings: the text is cut before them. */
  stop?: string[];
  /** Which log-probs `logprobs` holds (see above); default 'sampled'. */
  logprobMode?: 'sampled' | 'tempered';
  /** With logprobMode 'tempered': the temperature T of log_softmax(logits / T); default 1. */
  logprobTemperature?: number;
  /** Fold the adapter into a copy of the weights while sampling (an engine may ignore it). */
  merged?: boolean;
  /** Also score every completion with the adapters off at this temperature (the KL reference). */
  reference?: { temperature: number; microBatchSize?: number; padTokenId?: number };
}

/** What sample() returns: one row per completion (prompt after prompt, n each; group = prompt index). */
export interface SampledRows extends Rows {
  /** Behaviour log-probs (of the distribution sampled, unless logprobMode 'tempered'), aligned with completionIds. */
  logprobs: TokenLogprobs;
  finishReasons: FinishReason[];
  /** Decoded completions, cut before a stop string. */
  texts: string[];
  /** Reference log-probs (adapters off), aligned with completionIds, when `reference` was asked. */
  refLogprobs?: TokenLogprobs;
  /** The policy version whose weights sampled every row. */
  policyVersion: number;
  /** Seconds spent sampling. */
  seconds: number;
}

/** Progress callbacks of one sample() call (an engine in another thread may not call them). */
export interface SampleHooks {
  /** Called once per completion as it finishes. */
  onFinished?: () => void;
}

export interface ScoreOptions {
  /** 'off': the base model (the KL reference); 'on': the current policy. */
  adapters: 'on' | 'off';
  /** Log-probs of logits / temperature. */
  temperature: number;
  microBatchSize?: number;
  padTokenId?: number;
}

export interface RolloutEngine {
  /** The engine's registered name (`tfjs`, ...). */
  readonly name: string;
  /** The only place policy weights reach the engine. A snapshot with no weights (a policy without an
   *  adapter) only moves the version. */
  setWeights(weights: PolicyWeights): Promise<void>;
  /** n completions per prompt with the newest weights set. */
  sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal, hooks?: SampleHooks): Promise<SampledRows>;
  /** Per-token log-probs of each row's completion (the KL reference pass, any re-scoring). */
  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs>;
  close(): Promise<void>;
}

/** Training rows plus the old-policy log-probs (num_iterations > 1: from before the first step on them). */
export interface StepRows extends TrainingRows {
  oldLogprobs?: TokenLogprobs;
}

/** What a checkpoint holds to resume a trainer: plain values only. */
export interface TrainerState {
  weights: PolicyWeights;
  /** The optimiser's state (moments, step count) as the engine lays it out. */
  optimizer: unknown;
  /** Random-number generator states (e.g. LoRA dropout), as core/rng.ts's Rng.state() gives them. */
  rngStates: Record<string, [number, number, number, number]>;
  numTokensSeen: number;
}

export interface PolicyTrainer {
  /** Completed optimiser steps: the version of weights(). */
  readonly version: number;
  /** One optimiser step; resolves to its TRL-named metrics (`num_tokens` cumulative, counted once per rows object). */
  step(rows: StepRows, spec: TrainStepConfig): Promise<Record<string, number>>;
  /** Per-token log-probs under the trainer's current policy (old log-probs for num_iterations > 1). */
  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs>;
  /** The versioned trainable weights (PEFT names), read at the call. */
  weights(): Promise<PolicyWeights>;
  save(): Promise<TrainerState>;
  /** Puts a saved state back; `where` names its source in errors (a checkpoint file). */
  restore(state: TrainerState, where?: string): void;
  dispose(): void;
}

/** Where the scheduler runs an engine: this thread, or a generator worker thread beside the trainer. */
export type EngineThread = 'main' | 'worker';

export interface RolloutEngineArgs {
  /** The graph's `model` resource (for the tfjs engine a CausalLM; another engine reads what it needs, e.g. its folder). */
  model: unknown;
  tokenizer: Tokenizer;
  thread: EngineThread;
  /** The tensor backend for an engine started in a worker thread (wasm, cpu, webgpu). */
  backend?: string;
  /** The graph's `engine_options` for this engine (it checks them: say what is wrong and where). */
  options?: Record<string, unknown>;
  /** Where the engine reports a problem it works around (a server retried, ...): the run's warning events. */
  warn?: (message: string) => void;
  /** A folder of the run the engine may write files to (e.g. the model converted to its format). */
  workDir?: string;
  /** Where the engine is configured, for error messages (`rollout.generate rollout`). */
  where?: string;
}

/** A rollout engine as a plugin registers it (`definePlugin({ rolloutEngines: [...] })`); graphs pick it by
 *  name (`rollout.generate: {engine: NAME}`). The scheduler decides the thread: `create` builds it on the
 *  calling thread; for a worker thread (core/scheduler/engine-worker.ts) the host imports `worker.module`
 *  inside a fresh worker_thread, finds this definition under `worker.exportName` and calls `worker.create`
 *  there with what `worker.prepare` made of the arguments on the calling thread. */
export interface RolloutEngineDefinition {
  name: string;
  description: string;
  /** The threads the engine can run on; the scheduler picks one (a worker thread with overlap). 'worker' needs `worker`. */
  threads: EngineThread[];
  /**
   * True when the engine's compute runs off the JavaScript thread (llama.cpp's native threads, a remote
   * server, a GPU queue awaited between short bursts of host work): on the main thread it still samples while
   * the trainer works, so `overlap` needs no worker.
   */
  computesOffThread?: boolean;
  /** The engine on the calling thread. */
  create(args: RolloutEngineArgs): Promise<RolloutEngine>;
  /** How a worker thread builds the engine (absent: the engine runs on the calling thread only). */
  worker?: WorkerEngineSpec;
}

/** The part of a rollout engine definition that the worker host (core/scheduler/engine-worker.ts) uses. */
export interface WorkerEngineSpec {
  /** URL of the module that exports the definition (its file's `import.meta.url`); the worker thread imports it. */
  module: string;
  /** The name the definition is exported under in that module (`default` for a default export). */
  exportName: string;
  /** On the calling thread: what the worker needs, as structured-clonable plain data (a model folder and the
   *  adapter's config and weights, not a model object). Typed arrays in it are copied. */
  prepare(args: RolloutEngineArgs): unknown | Promise<unknown>;
  /** In the worker thread: the engine, built from `prepare`'s data. Its results are transferred to the
   *  calling thread, so it must not keep the typed arrays it returns. */
  create(prepared: unknown, args: WorkerEngineArgs): Promise<RolloutEngine>;
}

export interface WorkerEngineArgs {
  /** The same tokenizer, rebuilt in the worker from its files. */
  tokenizer: Tokenizer;
  /** The backend asked for (`worker_backend`, or the run's); an engine without backends ignores it. */
  backend?: string;
  /** Call between steps that never yield to the event loop (each sampled token): it aborts the signal of
   *  the sample in progress as soon as the calling thread cancelled it. An engine whose work awaits I/O
   *  sees the abort on its signal and need not call it. */
  checkCancelled(): void;
}
