// The generator worker's side (runs in a worker_threads Worker with its own TensorFlow.js instance;
// loaded through worker-bootstrap.mjs). It loads the model folder, attaches the LoRA adapter, takes
// policy snapshots, and samples batches with generate(). Requests are handled one at a time, in order,
// so a generate request uses exactly the policy shipped before it.
import { parentPort } from 'node:worker_threads';
import { tf } from '../llm/tf.js';
import { initBackend, type BackendName } from '../llm/backend.js';
import { loadModel } from '../llm/model-loader.js';
import { attachLora, loadLoraSnapshot } from '../llm/lora.js';
import { sampleBatch } from './sample-batch.js';
import { Tokenizer } from '../llm/tokenizer.js';
import type { CausalLM } from '../llm/model.js';
import { serializeError, type CancelRequest, type GenerateReply, type GenerateRequest, type InitReply, type InitRequest, type PolicyWeights, type ReplyValues, type WorkerReply, type WorkerRequest } from './protocol.js';

if (!parentPort) throw new Error('core/scheduler/worker-main.ts must run inside a worker thread');
const port = parentPort;

interface Loaded {
  model: CausalLM;
  tokenizer: Tokenizer;
  cancelFlag: Int32Array;
  policyVersion: number;
}
let loaded: Loaded | undefined;
/** Generate requests cancelled before they started. */
const cancelledEarly = new Set<number>();

function requireLoaded(what: string): Loaded {
  if (!loaded) throw new Error(`generator worker: ${what} before init`);
  return loaded;
}

function applyPolicy(state: Loaded, policy: PolicyWeights): void {
  if (!state.model.lora) throw new Error('generator worker: got policy weights, but the model has no LoRA adapter (only LoRA policies can be shipped)');
  // tidy frees the host-side tensors loadLoraSnapshot builds; the variables keep their new values.
  tf.tidy(() => loadLoraSnapshot(state.model, policy.weights, `policy version ${policy.version}`));
  state.policyVersion = policy.version;
}

async function init(msg: InitRequest): Promise<InitReply> {
  if (loaded) throw new Error('generator worker: init sent twice');
  const backend = await initBackend(msg.backend as BackendName);
  const model = await loadModel(msg.modelDir);
  if (msg.lora) attachLora(model, msg.lora);
  const state: Loaded = {
    model,
    tokenizer: new Tokenizer(msg.tokenizer.tokenizerJson, msg.tokenizer.tokenizerConfig, msg.tokenizer.generationConfig),
    cancelFlag: new Int32Array(msg.cancelFlag),
    policyVersion: 0,
  };
  if (msg.policy) applyPolicy(state, msg.policy);
  loaded = state;
  return { backend: backend.name, policyVersion: state.policyVersion };
}

async function runGenerate(msg: GenerateRequest): Promise<GenerateReply> {
  const state = requireLoaded('generate');
  const controller = new AbortController();
  const cancelled = () => cancelledEarly.delete(msg.id) || Atomics.load(state.cancelFlag, 0) === msg.id;
  if (cancelled()) throw new Error(`generate request ${msg.id} was cancelled`);
  const started = performance.now();
  const { results, refLogprobs } = await sampleBatch(state.model, msg.requests, msg.options, {
    tokenizer: state.tokenizer,
    signal: controller.signal,
    // Compute never yields to the message loop mid-batch, so the cancel flag lives in shared memory.
    onToken: () => {
      if (Atomics.load(state.cancelFlag, 0) === msg.id) controller.abort(new Error(`generate request ${msg.id} was cancelled`));
    },
  });
  return { results, refLogprobs, policyVersion: state.policyVersion, busyMs: performance.now() - started };
}

async function handle(msg: Exclude<WorkerRequest, CancelRequest>): Promise<ReplyValues[keyof ReplyValues]> {
  switch (msg.type) {
    case 'init':
      return init(msg);
    case 'policy': {
      const state = requireLoaded('policy');
      applyPolicy(state, msg);
      return { policyVersion: state.policyVersion };
    }
    case 'generate':
      return runGenerate(msg);
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
