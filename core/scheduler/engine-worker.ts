// The worker host: runs any registered rollout engine in a worker_thread, behind the same RolloutEngine
// interface. Where an engine runs is the scheduler's choice, not the engine's: the definition only says
// how a worker builds it (`worker`: the module that exports it, and prepare/create). Calls are posted in
// the order made, so a sample() right after setWeights() (not awaited) samples with those weights.
// Typed arrays go across as owned copies and come back transferred; aborting a sample's signal cancels
// it within one token (a shared-memory flag the engine's checkCancelled reads); a worker-side error
// rejects the call with the worker's message and stack.
import { Worker } from 'node:worker_threads';
import type { PolicyWeights, RolloutEngine, RolloutEngineArgs, RolloutEngineDefinition, SampledRows, SamplingOptions, ScoreOptions } from '../engine/interfaces.js';
import type { Rows, TokenLogprobs } from '../engine/rows.js';
import type { ReplyValues, SerializedError, WorkerReply, WorkerRequest } from './engine-worker-protocol.js';

/** An error raised inside the worker thread; `stack` is the worker's. */
export class EngineWorkerError extends Error {
  constructor(engine: string, message: string, stack?: string, name = 'EngineWorkerError') {
    super(`rollout engine ${engine} (worker thread): ${message}`);
    this.name = name === 'Error' ? 'EngineWorkerError' : name;
    if (stack) this.stack = `${this.name}: ${this.message}\n    (in the worker thread)\n${stack.split('\n').slice(1).join('\n')}`;
  }
}

type RequestBody<T extends WorkerRequest['type']> = Omit<Extract<WorkerRequest, { type: T }>, 'id'>;

const BOOTSTRAP = new URL('./engine-worker-bootstrap.mjs', import.meta.url);
/** How long close() lets the engine close itself before the thread is stopped. */
const CLOSE_GRACE_MS = 5000;

/** An owned copy of a typed array (exactly its elements, in a buffer of its own), to transfer. */
function owned<T extends Int32Array | Float32Array | Uint8Array>(array: T, transfer: ArrayBuffer[]): T {
  const copy = array.slice() as T;
  transfer.push(copy.buffer as ArrayBuffer);
  return copy;
}

function ownedRows(rows: Rows, transfer: ArrayBuffer[]): Rows {
  return {
    promptIds: owned(rows.promptIds, transfer),
    promptOffsets: owned(rows.promptOffsets, transfer),
    completionIds: owned(rows.completionIds, transfer),
    completionOffsets: owned(rows.completionOffsets, transfer),
    group: owned(rows.group, transfer),
  };
}

export class EngineWorker implements RolloutEngine {
  private static readonly running = new Set<EngineWorker>();
  /** Worker threads started and not yet exited, in this process (to check that shutdown is clean). */
  static get liveCount(): number {
    return EngineWorker.running.size;
  }

  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly cancelFlag = new Int32Array(new SharedArrayBuffer(4));

  private constructor(
    readonly name: string,
    private readonly worker: Worker,
  ) {
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.fail(new EngineWorkerError(name, error.message, error.stack)));
    worker.on('exit', (code) => {
      EngineWorker.running.delete(this);
      const exited = new EngineWorkerError(name, `the worker thread exited (code ${code})`);
      this.fail(exited);
      for (const p of this.pending.values()) p.reject(exited); // close's own request
      this.pending.clear();
    });
    EngineWorker.running.add(this);
    worker.unref(); // an idle worker never keeps the process alive; it is ref'd while work is pending
  }

  /** Starts `definition`'s engine in a new worker thread; resolves once it is built (rejects with the worker's error if it cannot be). */
  static async start(definition: RolloutEngineDefinition, args: RolloutEngineArgs): Promise<EngineWorker> {
    const spec = definition.worker;
    if (!spec) throw new Error(`rollout engine ${definition.name} cannot run in a worker thread (its definition has no \`worker\` part)`);
    const prepared = await spec.prepare(args);
    const host = new EngineWorker(
      definition.name,
      new Worker(BOOTSTRAP, {
        name: `grpoflow-engine-${definition.name}`,
        // The parent's flags (vitest's or tsx's loaders) are not needed: the bootstrap registers tsx.
        execArgv: process.execArgv.filter((a) => a.startsWith('--max-old-space-size')),
      }),
    );
    try {
      await host.request<'init'>({
        type: 'init',
        module: spec.module,
        exportName: spec.exportName,
        prepared,
        backend: args.backend,
        tokenizer: args.tokenizer.source,
        cancelFlag: host.cancelFlag.buffer as SharedArrayBuffer,
      });
      return host;
    } catch (error) {
      await host.close();
      throw error;
    }
  }

  /** Ships the weights (copied: the caller's arrays stay usable). */
  async setWeights(policy: PolicyWeights): Promise<void> {
    const transfer: ArrayBuffer[] = [];
    const weights = Object.fromEntries(Object.entries(policy.weights).map(([name, t]) => [name, { shape: [...t.shape], data: owned(t.data, transfer) }]));
    const { version, stepsPerBatch } = policy;
    await this.request<'setWeights'>({ type: 'setWeights', weights: { version, stepsPerBatch, weights } }, transfer);
  }

  /** Samples in the worker. Aborting `signal` cancels it (a busy engine stops within one token). Hooks are not called across threads. */
  async sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal): Promise<SampledRows> {
    signal?.throwIfAborted();
    const id = this.nextId++;
    const onAbort = () => this.cancel(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const transfer: ArrayBuffer[] = [];
      const copies = prompts.map((p) => owned(Int32Array.from(p), transfer));
      return await this.request<'sample'>({ type: 'sample', prompts: copies, n, options }, transfer, id);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    const transfer: ArrayBuffer[] = [];
    return this.request<'score'>({ type: 'score', rows: ownedRows(rows, transfer), options }, transfer);
  }

  /**
   * Cancels in-flight work, lets the engine close, then stops the thread. Pending requests reject. Safe
   * to call more than once and after the worker failed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const id of this.pending.keys()) this.cancel(id);
      const healthy = !this.failure;
      this.fail(new EngineWorkerError(this.name, 'closed'));
      // The engine closes after the cancelled work in the worker's queue; a stuck one does not hold the run.
      if (healthy) await Promise.race([this.post<'close'>({ type: 'close' }).catch(() => undefined), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
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
    return this.post(body, transfer, id);
  }

  /** Posts a request and waits for its reply (also after a failure: close's own request). */
  private post<T extends keyof ReplyValues>(body: RequestBody<T>, transfer: ArrayBuffer[] = [], id = this.nextId++): Promise<ReplyValues[T]> {
    return new Promise<ReplyValues[T]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ ...body, id } as unknown as WorkerRequest, transfer);
    });
  }

  private onReply(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(this.toError(reply.error));
  }

  /** The worker cannot go on: every pending and later request rejects with `error`. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.worker.unref();
  }

  private toError(e: SerializedError): Error {
    return new EngineWorkerError(this.name, e.message, e.stack, e.name);
  }
}
