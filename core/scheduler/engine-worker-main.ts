// The worker thread's side of the worker host (loaded through engine-worker-bootstrap.mjs): imports the
// engine definition's module, builds the engine with `worker.create`, and answers the RolloutEngine calls
// one at a time, in order, so a sample uses exactly the weights set before it. Results go back
// transferred (the engine hands them over).
import { parentPort } from 'node:worker_threads';
import type { RolloutEngine, RolloutEngineDefinition } from '../engine/interfaces.js';
import { Tokenizer } from '../llm/tokenizer.js';
import { serializeError, typedArrayBuffers, type CancelRequest, type InitRequest, type ReplyValues, type SampleRequest, type WorkerReply, type WorkerRequest } from './engine-worker-protocol.js';

if (!parentPort) throw new Error('core/scheduler/engine-worker-main.ts must run inside a worker thread');
const port = parentPort;

let engine: RolloutEngine | undefined;
let cancelFlag: Int32Array | undefined;
/** The sample request in progress: checkCancelled aborts its controller once the flag names it. */
let running: { id: number; controller: AbortController } | undefined;
/** Sample requests cancelled before they started. */
const cancelledEarly = new Set<number>();

function checkCancelled(): void {
  if (running && cancelFlag && Atomics.load(cancelFlag, 0) === running.id && !running.controller.signal.aborted) {
    running.controller.abort(new Error(`sample request ${running.id} was cancelled`));
  }
}

async function init(msg: InitRequest): Promise<ReplyValues['init']> {
  if (engine) throw new Error('init sent twice');
  const module = (await import(msg.module)) as Record<string, unknown>;
  const definition = module[msg.exportName] as RolloutEngineDefinition | undefined;
  if (!definition?.worker || typeof definition.worker.create !== 'function') {
    throw new Error(`${msg.module} does not export a rollout engine definition with a worker part as "${msg.exportName}"`);
  }
  cancelFlag = new Int32Array(msg.cancelFlag);
  const tokenizer = new Tokenizer(msg.tokenizer.tokenizerJson, msg.tokenizer.tokenizerConfig, msg.tokenizer.generationConfig);
  engine = await definition.worker.create(msg.prepared, { tokenizer, backend: msg.backend, checkCancelled });
  return { name: engine.name };
}

function requireEngine(what: string): RolloutEngine {
  if (!engine) throw new Error(`${what} before init`);
  return engine;
}

async function sample(msg: SampleRequest): Promise<ReplyValues['sample']> {
  const current = requireEngine('sample');
  if (cancelledEarly.delete(msg.id) || (cancelFlag && Atomics.load(cancelFlag, 0) === msg.id)) throw new Error(`sample request ${msg.id} was cancelled`);
  running = { id: msg.id, controller: new AbortController() };
  try {
    return await current.sample(msg.prompts, msg.n, msg.options, running.controller.signal);
  } finally {
    running = undefined;
  }
}

async function handle(msg: Exclude<WorkerRequest, CancelRequest>): Promise<ReplyValues[keyof ReplyValues]> {
  switch (msg.type) {
    case 'init':
      return init(msg);
    case 'setWeights':
      await requireEngine('setWeights').setWeights(msg.weights);
      return null;
    case 'sample':
      return sample(msg);
    case 'score':
      return requireEngine('score').score(msg.rows, msg.options);
    case 'close':
      await engine?.close();
      engine = undefined;
      return null;
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: WorkerRequest) => {
  if (msg.type === 'cancel') {
    // Not queued behind the work it cancels; an engine that awaits I/O sees the abort at once.
    if (running?.id === msg.target) running.controller.abort(new Error(`sample request ${msg.target} was cancelled`));
    else cancelledEarly.add(msg.target);
    return;
  }
  queue = queue.then(async () => {
    let reply: WorkerReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const value = await handle(msg);
      reply = { type: 'reply', id: msg.id, ok: true, value };
      transfer = typedArrayBuffers(value);
    } catch (error) {
      reply = { type: 'reply', id: msg.id, ok: false, error: serializeError(error) };
    }
    port.postMessage(reply, transfer);
  });
});
