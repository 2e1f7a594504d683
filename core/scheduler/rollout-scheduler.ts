// The rollout side of the schedule, for rollout.generate: which engine samples (the main thread or a
// worker thread), when batch k may start (the staleness bound against the trainer's policy stream),
// which weights it uses, and how busy the generator is. The trainer knows nothing of it: overlap comes
// from the bounded stream edges plus the policy feedback stream.
import type { Observable } from 'rxjs';
import { z } from 'zod';
import type { GenerationRequest } from '../llm/generate.js';
import { loraSnapshotAsync, type LoraSnapshot } from '../llm/lora.js';
import type { CausalLM } from '../llm/model.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { PolicySnapshot } from '../ports.js';
import { BusyMeter } from './busy-meter.js';
import { PolicyFollower } from './policy-follower.js';
import type { WorkerGenerateOptions } from './protocol.js';
import { mainThreadEngine, workerEngine, type EngineSample, type RolloutEngine } from './rollout-engine.js';

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
    .enum(['auto', 'main', 'worker'])
    .default('auto')
    .describe('Where sampling runs: the main thread (sharing the model) or a worker thread with its own model copy. auto: worker when overlap is on.'),
  worker_backend: z
    .enum(['wasm', 'cpu', 'webgpu'])
    .optional()
    .describe("TensorFlow.js backend of the worker's own instance; default the run's backend when it is one of these, else wasm."),
};

export interface SchedulerOptions {
  overlap: boolean;
  maxStaleness: number;
  engine: 'auto' | 'main' | 'worker';
  workerBackend?: string;
  /** The run's backend (`ctx.services.backend.name`), the worker's default. */
  runBackend?: string;
  /** The policy version before the trainer's first snapshot (the step a resumed run starts at). Default 0. */
  initialVersion?: number;
}

const WORKER_BACKENDS = new Set(['wasm', 'cpu', 'webgpu']);

export class RolloutScheduler {
  readonly follower: PolicyFollower;
  private readonly busy = new BusyMeter();
  private waitedMs = 0;
  private lastLag = 0;
  /** The adapter weights copied for the newest snapshot that came without them (read asynchronously). */
  private copied: { version: number; weights: Promise<LoraSnapshot> } | undefined;

  private constructor(
    private readonly engine: RolloutEngine,
    private readonly model: CausalLM,
    policy$: Observable<PolicySnapshot> | undefined,
    /** Steps a batch may trail the trainer: max_staleness with overlap, 0 without (strictly on-policy). */
    readonly maxStaleness: number,
    private readonly initialVersion: number,
    /** The worker's backend ('' on the main thread). */
    readonly workerBackend: string,
  ) {
    // A worker needs the adapter weights of every version. A trainer that shares this model object sends
    // the version only; it announces inside its step, so the model holds exactly that version's weights
    // while the announcement is delivered: copy them then (no lock wait, no half-updated weights). The
    // read is asynchronous (WebGPU has no other) but issued here, so it holds that version's values.
    const needsWeights = engine.kind === 'worker' && model.lora !== undefined;
    this.follower = new PolicyFollower(policy$, (snapshot) => {
      if (needsWeights && Object.keys(snapshot.weights).length === 0) {
        const weights = loraSnapshotAsync(model);
        weights.catch(() => {}); // awaited in latestPolicy
        this.copied = { version: snapshot.version, weights };
      }
      return snapshot;
    });
  }

  static async start(args: {
    model: CausalLM;
    tokenizer: Tokenizer;
    policy?: Observable<PolicySnapshot>;
    options: SchedulerOptions;
  }): Promise<RolloutScheduler> {
    const { model, tokenizer, options } = args;
    const engineKind = options.engine === 'auto' ? (options.overlap ? 'worker' : 'main') : options.engine;
    if (options.overlap && engineKind === 'main') {
      throw new Error('overlap: true needs engine: worker (on the main thread, sampling and training take turns on one model)');
    }
    const backend = options.workerBackend ?? (options.runBackend && WORKER_BACKENDS.has(options.runBackend) ? options.runBackend : 'wasm');
    const engine = engineKind === 'worker' ? await workerEngine(model, tokenizer, { backend }) : mainThreadEngine(model, tokenizer);
    const maxStaleness = options.overlap ? options.maxStaleness : 0;
    return new RolloutScheduler(engine, model, args.policy, maxStaleness, options.initialVersion ?? 0, engineKind === 'worker' ? backend : '');
  }

  get engineKind(): 'main' | 'worker' {
    return this.engine.kind;
  }

  /**
   * Samples batch `index` (counted from 0 in this run): `groupSize` completions per request, once the
   * staleness bound admits it, with the newest policy at that moment. undefined: the trainer has
   * finished, so no more batches are wanted.
   */
  async sample(
    index: number,
    requests: GenerationRequest[],
    groupSize: number,
    options: WorkerGenerateOptions,
    signal?: AbortSignal,
  ): Promise<EngineSample | undefined> {
    const waitStarted = performance.now();
    let sampling: Promise<EngineSample> | undefined;
    // Started inside the admission itself: a worker gets its weights and the batch before the trainer's
    // next step blocks this thread (awaiting first would leave the worker idle during that step).
    const admission = await this.follower.admit(index, this.maxStaleness, signal, () => {
      sampling = this.engine.sample(requests, groupSize, options, () => this.latestPolicy(), signal);
      sampling.catch(() => {}); // awaited below; not unhandled while the admission settles
    });
    this.waitedMs += performance.now() - waitStarted;
    if (admission.status === 'ended') return undefined;
    const sample = await sampling!;
    this.busy.add(sample.seconds * 1000);
    this.lastLag = (this.follower.latest ? this.follower.startVersion : this.initialVersion) + index * (this.follower.latest?.stepsPerBatch ?? 1) - sample.policyVersion;
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

  /**
   * The trainer's newest snapshot. Before its first: on a resumed run, the restored weights at the
   * resumed step (the trainer restored them into the shared model before anything was generated).
   */
  private async latestPolicy(): Promise<PolicySnapshot | undefined> {
    const latest = this.follower.latest;
    if (latest) return this.copied?.version === latest.version ? { ...latest, weights: await this.copied.weights } : latest;
    if (this.initialVersion === 0) return undefined;
    return { version: this.initialVersion, weights: this.engine.kind === 'worker' && this.model.lora ? await loraSnapshotAsync(this.model) : {} };
  }


}
