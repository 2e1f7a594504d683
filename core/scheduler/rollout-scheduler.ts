// The rollout side of the schedule, for rollout.generate: which engine samples (the main thread or a
// worker thread), when batch k may start (the staleness bound against the trainer's policy stream),
// which weights it uses, and how busy the generator is. The trainer knows nothing of it: overlap comes
// from the bounded stream edges plus the policy feedback stream.
import type { Observable } from 'rxjs';
import { z } from 'zod';
import type { EngineThread, RolloutEngine, RolloutEngineDefinition, SampledRows, SamplingOptions } from '../engine/interfaces.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { PolicySnapshot } from '../ports.js';
import { BusyMeter } from './busy-meter.js';
import { EngineWorker } from './engine-worker.js';
import { PolicyFollower } from './policy-follower.js';

/** The rollout node's scheduling options (spread into its config schema). */
export const schedulerConfigShape = {
  overlap: z
    .boolean()
    .default(false)
    .describe(
      'Generate batch k+1 in a worker thread while the trainer works on batch k (needs a model loaded from a folder). false: the strict on-policy schedule — generate, wait for the trainer\'s step, generate …',
    ),
  max_staleness: z
    .number()
    .int()
    .min(0)
    .default(1)
    .describe('With overlap: the most optimiser steps a batch\'s sampling policy may be behind the trainer when it trains on it.'),
  engine: z
    .string()
    .min(1)
    .optional()
    .describe(
      "The rollout engine (`grpoflow nodes` lists the installed ones; built in: tfjs, webgpu, llama.cpp, openai). Default: webgpu when the run's backend is webgpu, else tfjs. The older spelling `engine: auto | main | worker` means engine tfjs on that thread.",
    ),
  engine_options: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('Options of the chosen engine, checked by it (llama.cpp: gpu, gguf_type, threads, max_context; openai: base_urls, adapter_dir, ...; README "Rollout engines", "Rollouts on inference servers").'),
  thread: z
    .enum(['auto', 'main', 'worker'])
    .default('auto')
    .describe('Where the engine runs: this thread, or a worker thread (the tfjs engine with its own model copy there). auto: worker when overlap is on, unless the engine computes off this thread (llama.cpp, openai).'),
  worker_backend: z
    .enum(['wasm', 'cpu', 'webgpu'])
    .optional()
    .describe("TensorFlow.js backend of the worker's own instance; default the run's backend when it is one of these, else wasm."),
};

export interface SchedulerOptions {
  overlap: boolean;
  maxStaleness: number;
  thread: 'auto' | EngineThread;
  /** The config key that chose the thread, for the error message (`thread`, or the older `engine`). */
  threadKey?: string;
  workerBackend?: string;
  /** The run's backend (`ctx.services.backend.name`), the worker's default. */
  runBackend?: string;
  /** The graph's engine_options, handed to the engine. */
  engineOptions?: Record<string, unknown>;
  /** The run's warning events, for the engine. */
  warn?: (message: string) => void;
  /** The policy version before the trainer's first snapshot (the step a resumed run starts at). Default 0. */
  initialVersion?: number;
}

const WORKER_BACKENDS = new Set(['wasm', 'cpu', 'webgpu']);

export class RolloutScheduler {
  readonly follower: PolicyFollower;
  private readonly busy = new BusyMeter();
  private waitedMs = 0;
  private lastLag = 0;
  /** The version last handed to the engine's setWeights (-1: none yet; the first snapshot always goes). */
  private shippedVersion = -1;

  private constructor(
    private readonly engine: RolloutEngine,
    readonly engineKind: EngineThread,
    policy$: Observable<PolicySnapshot> | undefined,
    /** Steps a batch may trail the trainer: max_staleness with overlap, 0 without (strictly on-policy). */
    readonly maxStaleness: number,
    private readonly initialVersion: number,
    /** The worker's backend ('' on the main thread). */
    readonly workerBackend: string,
  ) {
    // A resumed run's first batch waits for the trainer's restored weights (its first snapshot).
    this.follower = new PolicyFollower(policy$, undefined, initialVersion > 0);
  }

  /** Starts `engine` on the thread the options call for (running it in a worker is the scheduler's choice). */
  static async start(args: {
    engine: RolloutEngineDefinition;
    model: unknown;
    tokenizer: Tokenizer;
    policy?: Observable<PolicySnapshot>;
    options: SchedulerOptions;
    /** A folder the engine may write to, and the node, for its errors. */
    workDir?: string;
    where?: string;
  }): Promise<RolloutScheduler> {
    const { model, tokenizer, options } = args;
    // An engine whose compute runs off this thread overlaps with the trainer from the main thread.
    const offThread = args.engine.computesOffThread === true && args.engine.threads.includes('main');
    const engineKind: EngineThread = options.thread === 'auto' ? (options.overlap && !offThread ? 'worker' : 'main') : options.thread;
    if (options.overlap && engineKind === 'main' && !offThread) {
      const key = options.threadKey ?? 'thread';
      throw new Error(`overlap: true needs ${key}: worker (on the main thread, sampling and training take turns)`);
    }
    if (!args.engine.threads.includes(engineKind)) {
      throw new Error(`rollout engine ${args.engine.name} cannot run on the ${engineKind} thread (it runs on: ${args.engine.threads.join(', ')})`);
    }
    const backend = options.workerBackend ?? (options.runBackend && WORKER_BACKENDS.has(options.runBackend) ? options.runBackend : 'wasm');
    const engineArgs = { model, tokenizer, thread: engineKind, backend, options: options.engineOptions, warn: options.warn, workDir: args.workDir, where: args.where };
    // Running an engine in a worker thread is the scheduler's job: any definition with a `worker` part can.
    const engine = engineKind === 'worker' ? await EngineWorker.start(args.engine, engineArgs) : await args.engine.create(engineArgs);
    const maxStaleness = options.overlap ? options.maxStaleness : 0;
    const scheduler = new RolloutScheduler(engine, engineKind, args.policy, maxStaleness, options.initialVersion ?? 0, engineKind === 'worker' ? backend : '');
    // Without a trainer, a resumed run's batches are stamped with the checkpoint's step.
    if (!args.policy && scheduler.initialVersion > 0) await scheduler.ship({ version: scheduler.initialVersion, weights: {} });
    return scheduler;
  }

  /**
   * Samples batch `index` (counted from 0 in this run): `n` completions per prompt, once the staleness
   * bound admits it, with the newest policy at that moment. undefined: the trainer has finished, so no
   * more batches are wanted.
   */
  async sample(index: number, prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal): Promise<SampledRows | undefined> {
    const waitStarted = performance.now();
    let sampling: Promise<SampledRows> | undefined;
    // Started inside the admission itself: a worker gets its weights and the batch before the trainer's
    // next step blocks this thread (awaiting first would leave the worker idle during that step). Both
    // are posted without awaiting in between; the engine applies them in order.
    const admission = await this.follower.admit(index, this.maxStaleness, signal, () => {
      const latest = this.follower.latest;
      const shipped = latest && latest.version !== this.shippedVersion ? this.ship(latest) : Promise.resolve();
      const sampled = this.engine.sample(prompts, n, options, signal);
      sampling = Promise.all([shipped, sampled]).then(([, rows]) => rows);
      sampling.catch(() => {}); // awaited below; not unhandled while the admission settles
    });
    this.waitedMs += performance.now() - waitStarted;
    if (admission.status === 'ended') return undefined;
    const sample = await sampling!;
    this.busy.add(sample.seconds * 1000);
    const latest = this.follower.latest;
    const trainingBatch = Math.max(0, index - (latest?.extraBatches ?? 0));
    this.lastLag = (latest ? this.follower.startVersion : this.initialVersion) + trainingBatch * (latest?.stepsPerBatch ?? 1) - sample.policyVersion;
    return sample;
  }

  /**
   * Metrics after a batch: `busy` (the UI's utilisation line) = `scheduler/generator_busy`, seconds
   * spent waiting for the trainer, and how many optimiser steps the batch's policy trails the step it
   * is meant for (≤ the staleness bound).
   */
  metrics(): Record<string, number> {
    const busy = this.busy.fraction();
    return {
      busy,
      'scheduler/generator_busy': busy,
      'scheduler/policy_wait_s': this.waitedMs / 1000,
      'scheduler/policy_lag': Math.max(0, this.lastLag),
    };
  }

  async close(): Promise<void> {
    this.follower.close();
    await this.engine.close();
  }

  /** Hands a policy to the engine (the only place weights reach it). */
  private ship(policy: PolicySnapshot): Promise<void> {
    this.shippedVersion = policy.version;
    return this.engine.setWeights(policy);
  }
}
