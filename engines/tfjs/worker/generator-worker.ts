// A rollout generator in a worker thread with its own TensorFlow.js instance, so sampling batch k+1
// runs in parallel with the trainer's backprop on the main thread. The worker loads the same model
// folder, attaches the same LoRA config, and follows the trainer through policy snapshots.
import { Worker } from 'node:worker_threads';
import type { CausalLM } from '../model.js';
import type { Tokenizer } from '../../../core/llm/tokenizer.js';
import type { GenerationRequest, GenerationResult } from '../generate.js';
import { loraSnapshotAsync, type LoraSnapshot } from '../lora.js';
import type { PolicySnapshot } from '../../../core/ports.js';
import type { RolloutEngine } from '../../../core/engine/interfaces.js';
import type { InitRequest, PolicyWeights, ReplyValues, SerializedError, WorkerGenerateOptions, WorkerReply, WorkerRequest } from './protocol.js';

export interface GeneratorWorkerOptions {
  /** The main thread's model: the worker loads `model.dir` and attaches `model.lora`'s config. */
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Backend for the worker's tfjs (default `wasm`; `cpu` for exact agreement with a cpu main thread). */
  backend?: string;
  /** Initial adapter weights (default: the model's current LoRA weights, as version 0). */
  policy?: PolicySnapshot;
}

export interface WorkerGeneration {
  results: GenerationResult[];
  /** Per result, the base model's log-probs of its ids (when `options.reference` asked for them). */
  refLogprobs?: number[][];
  /** The policy version that sampled them. */
  policyVersion: number;
  busyMs: number;
}

/** An error raised inside the worker; `stack` is the worker's. */
export class GeneratorWorkerError extends Error {
  constructor(message: string, stack?: string, name = 'GeneratorWorkerError') {
    super(`generator worker: ${message}`);
    this.name = name === 'Error' ? 'GeneratorWorkerError' : name;
    if (stack) this.stack = `${this.name}: ${this.message}\n    (in the generator worker thread)\n${stack.split('\n').slice(1).join('\n')}`;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

type RequestBody<T extends WorkerRequest['type']> = Omit<Extract<WorkerRequest, { type: T }>, 'id'>;

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);

/** Copies of a snapshot's buffers (the caller's stay attached) and the list to transfer them. */
function copyForTransfer(weights: LoraSnapshot): { weights: LoraSnapshot; transfer: ArrayBuffer[] } {
  const copy: LoraSnapshot = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, { shape, data }] of Object.entries(weights)) {
    const owned = new Float32Array(data); // a fresh buffer exactly the tensor's size
    copy[name] = { shape: [...shape], data: owned };
    transfer.push(owned.buffer as ArrayBuffer);
  }
  return { weights: copy, transfer };
}

export class GeneratorWorker {
  private static readonly running = new Set<GeneratorWorker>();
  /** Worker threads started and not yet exited, in this process (to check that shutdown is clean). */
  static get liveCount(): number {
    return GeneratorWorker.running.size;
  }

  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly cancelFlag = new Int32Array(new SharedArrayBuffer(4));
  private shippedVersion = 0;
  /** The backend the worker's tfjs runs on. */
  backend = '';

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.fail(new GeneratorWorkerError(error.message, error.stack)));
    worker.on('exit', (code) => {
      GeneratorWorker.running.delete(this);
      this.fail(new GeneratorWorkerError(`the worker thread exited (code ${code})`));
    });
    GeneratorWorker.running.add(this);
    worker.unref(); // an idle worker never keeps the process alive; it is ref'd while work is pending
  }

  /** Starts a worker and waits until it has loaded the model (rejects with the worker's error if it cannot). */
  static async start(options: GeneratorWorkerOptions): Promise<GeneratorWorker> {
    const { model, tokenizer } = options;
    if (!model.dir) {
      throw new Error('generator worker: the model was not loaded from a folder, so a worker cannot load it (use engine: main)');
    }
    if (model.lora?.merged) throw new Error('generator worker: the LoRA adapter is merged into the weights; unmerge it first');
    const policy = options.policy ?? (model.lora ? { version: 0, weights: await loraSnapshotAsync(model) } : undefined);
    const worker = new GeneratorWorker(
      new Worker(BOOTSTRAP, {
        name: 'grpoflow-generator',
        // The parent's flags (vitest's or tsx's loaders) are not needed: the bootstrap registers tsx.
        execArgv: process.execArgv.filter((a) => a.startsWith('--max-old-space-size')),
      }),
    );
    const shipped = policy ? copyForTransfer(policy.weights) : undefined;
    try {
      const body: RequestBody<'init'> = {
        type: 'init',
        backend: options.backend ?? 'wasm',
        modelDir: model.dir,
        lora: model.lora ? { ...model.lora.config, targetModules: [...model.lora.config.targetModules] } : undefined,
        policy: policy && shipped ? { version: policy.version, weights: shipped.weights } : undefined,
        tokenizer: tokenizer.source,
        cancelFlag: worker.cancelFlag.buffer as SharedArrayBuffer,
      };
      const ready = await worker.request<'init'>(body as Omit<InitRequest, 'id'>, shipped?.transfer);
      worker.backend = ready.backend;
      worker.shippedVersion = ready.policyVersion;
      return worker;
    } catch (error) {
      await worker.close();
      throw error;
    }
  }

  /** The policy version the worker generates with. */
  get policyVersion(): number {
    return this.shippedVersion;
  }

  /** Ships new adapter weights (copied; the caller's arrays stay usable). Later generate calls use them. */
  async setPolicy(snapshot: PolicySnapshot | PolicyWeights): Promise<void> {
    const { weights, transfer } = copyForTransfer(snapshot.weights);
    const reply = await this.request<'policy'>({ type: 'policy', version: snapshot.version, weights }, transfer);
    this.shippedVersion = reply.policyVersion;
  }

  /** The worker's rollout engine behind the RolloutEngine interface. Calls are posted in the order made,
   *  so a sample() called right after setWeights() (not awaited) samples with those weights. */
  engine(): RolloutEngine {
    return {
      name: 'tfjs',
      setWeights: (weights) => this.setPolicy(weights),
      sample: (prompts, n, options, signal) => this.cancellable(signal, (id) => this.request<'sample'>({ type: 'sample', prompts: prompts.map((p) => Array.from(p)), n, options }, [], id)),
      score: (rows, options) => this.request<'score'>({ type: 'score', rows, options }),
      close: () => this.close(),
    };
  }

  /** Samples a batch in the worker. Aborting `signal` cancels it (the worker stops within one token). */
  generate(requests: GenerationRequest[], options: WorkerGenerateOptions = {}, signal?: AbortSignal): Promise<WorkerGeneration> {
    return this.cancellable(signal, (id) => this.request<'generate'>({ type: 'generate', requests, options }, [], id));
  }

  private async cancellable<T>(signal: AbortSignal | undefined, post: (id: number) => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    const id = this.nextId++;
    const onAbort = () => this.cancel(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await post(id);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Cancels in-flight work, then stops the thread. Pending requests reject. Safe to call more than once
   * and after the worker failed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const id of this.pending.keys()) this.cancel(id);
      this.fail(new GeneratorWorkerError('closed'));
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private cancel(id: number): void {
    Atomics.store(this.cancelFlag, 0, id);
    if (!this.failure) this.worker.postMessage({ type: 'cancel', id: this.nextId++, target: id } satisfies WorkerRequest);
  }

  private request<T extends keyof ReplyValues>(body: RequestBody<T>, transfer: ArrayBuffer[] = [], id = this.nextId++): Promise<ReplyValues[T]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<ReplyValues[T]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ ...body, id } as unknown as WorkerRequest, transfer);
    });
  }

  private onReply(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return; // a cancel's acknowledgement
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(toError(reply.error));
  }

  /** The worker cannot go on: every pending and later request rejects with `error`. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.worker.unref();
  }
}

function toError(e: SerializedError): Error {
  return new GeneratorWorkerError(e.message, e.stack, e.name);
}
