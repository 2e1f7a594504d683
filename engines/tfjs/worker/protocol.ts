// The messages between the main thread and a generator worker (worker-main.ts), which runs a rollout
// engine: policy = setWeights, sample, score (and generate, per-request generation for tools and tests). Every request carries
// an id and is answered by exactly one reply with that id: a value, or an error with the worker's stack.
import type { GenerateOptions, GenerationRequest, GenerationResult } from '../generate.js';
import type { LoraConfig, LoraSnapshot } from '../lora.js';
import type { TokenizerSource } from '../../../core/llm/tokenizer.js';
import type { ReferenceOptions } from '../grpo/reference-logprobs.js';
import type { SampledRows, SamplingOptions, ScoreOptions } from '../../../core/engine/interfaces.js';
import type { Rows, TokenLogprobs } from '../../../core/engine/rows.js';

/** A policy's trainable weights at one optimiser step, as shipped to the worker. */
export interface PolicyWeights {
  version: number;
  weights: LoraSnapshot;
}

export interface InitRequest {
  type: 'init';
  id: number;
  /** TensorFlow.js backend for the worker's own tfjs instance. */
  backend: string;
  /** The model folder the worker loads (`loadModel`), the same the main thread loaded. */
  modelDir: string;
  /** The LoRA adapter to attach (same r/alpha/targets as the trainer's); absent: the base model. */
  lora?: LoraConfig;
  /** The adapter weights to start from. */
  policy?: PolicyWeights;
  tokenizer: TokenizerSource;
  /** One Int32: the id of the generate request to cancel. Read between tokens, so a busy worker sees it at once. */
  cancelFlag: SharedArrayBuffer;
}

export interface PolicyRequest extends PolicyWeights {
  type: 'policy';
  id: number;
}

/** generate()'s options that cross the thread boundary: all but the tokenizer (the worker has its own), the signal and callbacks. */
export type WorkerGenerateOptions = Omit<GenerateOptions, 'tokenizer' | 'signal' | 'onToken' | 'onFinish'> & {
  /** Also compute each completion's log-probs under the base model (adapters off): see engines/tfjs/grpo/reference-logprobs.ts. */
  reference?: ReferenceOptions;
  /** Sample with the LoRA adapter folded into a copy of the adapted weights (`withLoraMerged`). */
  merged?: boolean;
};

export interface GenerateRequest {
  type: 'generate';
  id: number;
  requests: GenerationRequest[];
  options: WorkerGenerateOptions;
}

/** RolloutEngine.sample, in the worker. */
export interface SampleRequest {
  type: 'sample';
  id: number;
  prompts: number[][];
  n: number;
  options: SamplingOptions;
}

/** RolloutEngine.score, in the worker. */
export interface ScoreRequest {
  type: 'score';
  id: number;
  rows: Rows;
  options: ScoreOptions;
}

export interface CancelRequest {
  type: 'cancel';
  id: number;
  /** The generate request to cancel (queued or running). */
  target: number;
}

export type WorkerRequest = InitRequest | PolicyRequest | GenerateRequest | SampleRequest | ScoreRequest | CancelRequest;

export interface InitReply {
  backend: string;
  policyVersion: number;
}
export interface GenerateReply {
  results: GenerationResult[];
  /** Per result, the base model's log-probs of its ids (when the request asked for `reference`). */
  refLogprobs?: number[][];
  /** The policy version whose weights sampled every result. */
  policyVersion: number;
  /** Milliseconds the worker spent generating. */
  busyMs: number;
}

/** What each request type is answered with. */
export interface ReplyValues {
  init: InitReply;
  policy: { policyVersion: number };
  generate: GenerateReply;
  sample: SampledRows;
  score: TokenLogprobs;
  cancel: { cancelled: boolean };
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export type WorkerReply =
  | { type: 'reply'; id: number; ok: true; value: ReplyValues[keyof ReplyValues] }
  | { type: 'reply'; id: number; ok: false; error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}
