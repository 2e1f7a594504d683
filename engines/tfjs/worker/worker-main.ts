// The generator worker's side (runs in a worker_threads Worker with its own TensorFlow.js instance;
// loaded through worker-bootstrap.mjs). It loads the model folder, attaches the LoRA adapter, takes
// policy snapshots, and samples batches with generate(). Requests are handled one at a time, in order,
// so a generate request uses exactly the policy shipped before it.
import { parentPort } from 'node:worker_threads';
import { initBackend, type BackendName } from '../backend.js';
import { loadModel } from '../model-loader.js';
import { attachLora } from '../lora.js';
import { sampleBatch } from '../sample-batch.js';
import { Tokenizer } from '../../../core/llm/tokenizer.js';
import { TfjsRolloutEngine } from '../rollout-engine.js';
import { serializeError, type CancelRequest, type GenerateReply, type GenerateRequest, type InitReply, type InitRequest, type ReplyValues, type SampleRequest, type WorkerReply, type WorkerRequest } from './protocol.js';

if (!parentPort) throw new Error('engines/tfjs/worker/worker-main.ts must run inside a worker thread');
const port = parentPort;

interface Loaded {
  engine: TfjsRolloutEngine;
  tokenizer: Tokenizer;
  cancelFlag: Int32Array;
}
/** The request being sampled (the engine's per-token hook checks the cancel flag against it). */
let running: { id: number; controller: AbortController } | undefined;
let loaded: Loaded | undefined;
/** Generate requests cancelled before they started. */
const cancelledEarly = new Set<number>();

function requireLoaded(what: string): Loaded {
  if (!loaded) throw new Error(`generator worker: ${what} before init`);
  return loaded;
}

async function init(msg: InitRequest): Promise<InitReply> {
  if (loaded) throw new Error('generator worker: init sent twice');
  const backend = await initBackend(msg.backend as BackendName);
  const model = await loadModel(msg.modelDir);
  if (msg.lora) attachLora(model, msg.lora);
  const tokenizer = new Tokenizer(msg.tokenizer.tokenizerJson, msg.tokenizer.tokenizerConfig, msg.tokenizer.generationConfig);
  const cancelFlag = new Int32Array(msg.cancelFlag);
  const state: Loaded = { engine: new TfjsRolloutEngine(model, tokenizer, { onToken }), tokenizer, cancelFlag };
  if (msg.policy) await state.engine.setWeights(msg.policy);
  loaded = state;
  return { backend: backend.name, policyVersion: state.engine.policyVersion };
}

/** Called after every sampled token: compute never yields to the message loop mid-batch, so the cancel
 *  flag lives in shared memory. */
function onToken(): void {
  if (loaded && running && Atomics.load(loaded.cancelFlag, 0) === running.id) running.controller.abort(new Error(`generate request ${running.id} was cancelled`));
}

/** Runs a cancellable request (generate, sample): `work` gets the signal the cancel flag aborts. */
async function cancellable<T>(msg: GenerateRequest | SampleRequest, work: (state: Loaded, signal: AbortSignal) => Promise<T>): Promise<T> {
  const state = requireLoaded(msg.type);
  const cancelled = () => cancelledEarly.delete(msg.id) || Atomics.load(state.cancelFlag, 0) === msg.id;
  if (cancelled()) throw new Error(`generate request ${msg.id} was cancelled`);
  running = { id: msg.id, controller: new AbortController() };
  try {
    return await work(state, running.controller.signal);
  } finally {
    running = undefined;
  }
}

function runGenerate(msg: GenerateRequest): Promise<GenerateReply> {
  return cancellable(msg, async (state, signal) => {
    const started = performance.now();
    const { results, refLogprobs } = await sampleBatch(state.engine.model, msg.requests, msg.options, { tokenizer: state.tokenizer, signal, onToken });
    return { results, refLogprobs, policyVersion: state.engine.policyVersion, busyMs: performance.now() - started };
  });
}

async function handle(msg: Exclude<WorkerRequest, CancelRequest>): Promise<ReplyValues[keyof ReplyValues]> {
  switch (msg.type) {
    case 'init':
      return init(msg);
    case 'policy': {
      const { engine } = requireLoaded('policy');
      await engine.setWeights(msg);
      return { policyVersion: engine.policyVersion };
    }
    case 'generate':
      return runGenerate(msg);
    case 'sample':
      return cancellable(msg, (state, signal) => state.engine.sample(msg.prompts, msg.n, msg.options, signal));
    case 'score':
      return requireLoaded('score').engine.score(msg.rows, msg.options);
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: WorkerRequest) => {
  if (msg.type === 'cancel') {
    // Not queued behind the work it cancels.
    cancelledEarly.add(msg.target);
    port.postMessage({ type: 'reply', id: msg.id, ok: true, value: { cancelled: true } } satisfies WorkerReply);
    return;
  }
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = { type: 'reply', id: msg.id, ok: true, value: await handle(msg) };
    } catch (error) {
      reply = { type: 'reply', id: msg.id, ok: false, error: serializeError(error) };
    }
    port.postMessage(reply);
  });
});
