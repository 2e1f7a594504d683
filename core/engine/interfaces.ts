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
}

export type PolicyWeights = PolicySnapshot;

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
  eosTokenIds?: number[];
  /** Stop strings: the text is cut before them. */
  stop?: string[];
  /** Temperature of the recorded behaviour log-probs (log_softmax(logits / T)); default 1. */
  logprobTemperature?: number;
  /** Fold the adapter into a copy of the weights while sampling (an engine may ignore it). */
  merged?: boolean;
  /** Also score every completion with the adapters off at this temperature (the KL reference). */
  reference?: { temperature: number; microBatchSize?: number; padTokenId?: number };
}

/** What sample() returns: one row per completion (prompt after prompt, n each; group = prompt index). */
export interface SampledRows extends Rows {
  /** Behaviour log-probs, aligned with completionIds. */
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
  restore(state: TrainerState): void;
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
}

/** A rollout engine as a plugin registers it (`definePlugin({ rolloutEngines: [...] })`); graphs pick it by
 *  name (`rollout.generate: {engine: NAME}`). */
export interface RolloutEngineDefinition {
  name: string;
  description: string;
  /** The threads the engine can run on; the scheduler picks one (a worker thread with overlap). */
  threads: EngineThread[];
  /** sample() awaits a device between short bursts of host work (a GPU engine), so on the main thread it
   *  already overlaps with training: with overlap the scheduler keeps it on the main thread. */
  overlapsOnMainThread?: boolean;
  create(args: RolloutEngineArgs): Promise<RolloutEngine>;
}
