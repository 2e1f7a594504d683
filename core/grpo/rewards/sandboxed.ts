// A user reward module run off the main thread: one worker thread per reward file, each batch scored
// under a time limit. A reward that loops forever or returns a promise that never settles is stopped
// (the worker is terminated; the next batch gets a fresh one) and named in the error, while the main
// thread stays free to train, checkpoint and answer Ctrl-C.
//
// The worker's `process.env` is only what the graph passes (`env:` on reward.file), not the parent's:
// reward code reads no secrets it was not given. (A worker shares the process: this is a limit on
// what the reward sees and how long it runs, not a security boundary against hostile code.)
import { Worker } from 'node:worker_threads';
import { resolve } from 'node:path';
import type { RewardFunction } from '../../ports.js';

type ScoreArgs = Parameters<RewardFunction['score']>[0];

export interface RewardWorkerData {
  path: string;
  exportName?: string;
}

export type RewardRequest = { id: number; args: ScoreArgs };
export type RewardResponse =
  | { type: 'ready'; name: string }
  | { type: 'load-failed'; message: string }
  | { type: 'scored'; id: number; values: unknown }
  | { type: 'failed'; id: number; message: string };

export interface SandboxedRewardOptions {
  name?: string;
  weight?: number;
  onError?: RewardFunction['onError'];
  /** Limit for scoring one batch, seconds. */
  timeoutS: number;
  /** The worker's whole environment. */
  env?: Record<string, string>;
}

/** The reward overran its time limit (an endless loop or a promise that never settles). */
export class RewardTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RewardTimeoutError';
  }
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);

interface Started {
  worker: Worker;
  ready: Promise<string>;
  pending: Map<number, { resolve(values: unknown): void; reject(error: Error): void }>;
}

export interface SandboxedReward extends RewardFunction {
  /** Stops the worker (at the end of the run). */
  close(): Promise<void>;
}

export async function loadSandboxedReward(path: string, exportName: string | undefined, options: SandboxedRewardOptions): Promise<SandboxedReward> {
  const absolute = resolve(path);
  let current: Started | undefined;
  let nextId = 0;

  const start = (): Started => {
    const worker = new Worker(BOOTSTRAP, {
      name: `grpoflow-reward ${absolute}`,
      workerData: { path: absolute, exportName } satisfies RewardWorkerData,
      env: { ...(options.env ?? {}) },
      execArgv: [],
    });
    const pending: Started['pending'] = new Map();
    const ready = new Promise<string>((resolveReady, rejectReady) => {
      worker.on('message', (message: RewardResponse) => {
        if (message.type === 'ready') resolveReady(message.name);
        else if (message.type === 'load-failed') rejectReady(new Error(message.message));
        else {
          const waiter = pending.get(message.id);
          pending.delete(message.id);
          if (message.type === 'scored') waiter?.resolve(message.values);
          else waiter?.reject(new Error(message.message));
        }
      });
      const fail = (error: Error) => {
        rejectReady(error);
        for (const waiter of pending.values()) waiter.reject(error);
        pending.clear();
        if (current?.worker === worker) current = undefined;
      };
      worker.on('error', (error) => fail(error));
      worker.on('exit', (code) => fail(new Error(`the reward worker for ${path} exited (code ${code})`)));
    });
    ready.catch(() => undefined);
    return { worker, ready, pending };
  };

  current = start();
  const name = await current.ready;

  const score = async (args: ScoreArgs): Promise<number[]> => {
    current ??= start();
    const running = current;
    const id = nextId++;
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // terminate() stops even a synchronous endless loop; the next batch starts a fresh worker.
        if (current === running) current = undefined;
        void running.worker.terminate();
        reject(
          new RewardTimeoutError(
            `${path} did not return within timeout_s ${options.timeoutS} s (an endless loop, or a promise that never settles); its worker was stopped`,
          ),
        );
      }, options.timeoutS * 1000);
    });
    const scored = running.ready.then(
      () =>
        new Promise<unknown>((resolveScore, rejectScore) => {
          running.pending.set(id, { resolve: resolveScore, reject: rejectScore });
          running.worker.postMessage({ id, args } satisfies RewardRequest);
        }),
    );
    try {
      return (await Promise.race([scored, overrun])) as number[];
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    name: options.name ?? exportName ?? name,
    weight: options.weight ?? 1,
    onError: options.onError ?? 'fail',
    score,
    close: async () => {
      const worker = current?.worker;
      current = undefined;
      if (worker) await worker.terminate();
    },
  };
}
