// The messages between the worker host (engine-worker.ts) and a worker thread running a rollout engine
// (engine-worker-main.ts): init, then the RolloutEngine calls. Every request carries an id and is
// answered by exactly one reply with that id: a value, or an error with the worker's stack.
import type { PolicyWeights, SampledRows, SamplingOptions, ScoreOptions } from '../engine/interfaces.js';
import type { Rows, TokenLogprobs } from '../engine/rows.js';
import type { TokenizerSource } from '../llm/tokenizer.js';

export interface InitRequest {
  type: 'init';
  id: number;
  /** Where the engine's definition is: the module URL and the export name. */
  module: string;
  exportName: string;
  /** The definition's `worker.prepare` result. */
  prepared: unknown;
  backend?: string;
  tokenizer: TokenizerSource;
  /** One Int32: the id of the sample request to cancel. Read between tokens, so a busy worker sees it at once. */
  cancelFlag: SharedArrayBuffer;
}

export interface SetWeightsRequest {
  type: 'setWeights';
  id: number;
  weights: PolicyWeights;
}

export interface SampleRequest {
  type: 'sample';
  id: number;
  prompts: Int32Array[];
  n: number;
  options: SamplingOptions;
}

export interface ScoreRequest {
  type: 'score';
  id: number;
  rows: Rows;
  options: ScoreOptions;
}

export interface CloseRequest {
  type: 'close';
  id: number;
}

export interface CancelRequest {
  type: 'cancel';
  id: number;
  /** The sample request to cancel (queued or running). */
  target: number;
}

export type WorkerRequest = InitRequest | SetWeightsRequest | SampleRequest | ScoreRequest | CloseRequest | CancelRequest;

/** What each request type is answered with. */
export interface ReplyValues {
  init: { name: string };
  setWeights: null;
  sample: SampledRows;
  score: TokenLogprobs;
  close: null;
  cancel: null;
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

/** The buffers of the typed arrays in `value` (its fields, one level of arrays and objects down), each once. */
export function typedArrayBuffers(value: unknown, depth = 3): ArrayBuffer[] {
  const found = new Set<ArrayBuffer>();
  const walk = (v: unknown, left: number) => {
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer) found.add(v.buffer);
    } else if (left > 0 && v && typeof v === 'object') {
      for (const item of Array.isArray(v) ? v : Object.values(v)) walk(item, left - 1);
    }
  };
  walk(value, depth);
  return [...found];
}
