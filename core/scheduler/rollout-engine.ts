// Where a rollout batch is sampled: on the main thread from the shared model (under its lock), or in a
// generator worker thread that runs in parallel with the trainer. Both return [request][member]
// completions and the policy version that sampled them, so the rollout node does not care which.
import { repeatForGroups, type GenerationRequest, type GenerationResult } from '../llm/generate.js';
import type { CausalLM } from '../llm/model.js';
import { modelLock } from '../llm/model-lock.js';
import { sampleBatch } from './sample-batch.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { PolicySnapshot } from '../ports.js';
import { GeneratorWorker } from './generator-worker.js';
import type { WorkerGenerateOptions } from './protocol.js';

export interface EngineSample {
  /** `[request][member]` */
  results: GenerationResult[][];
  /** `[request][member][token]`: the base model's log-probs of each completion, when `options.reference` asked. */
  refLogprobs?: number[][][];
  policyVersion: number;
  /** Seconds spent generating (not waiting for the lock or the thread). */
  seconds: number;
}

export interface RolloutEngine {
  readonly kind: 'main' | 'worker';
  /**
   * Samples `groupSize` completions per request with the newest policy, `policy()` (absent: the initial
   * weights, version 0; a worker needs its weights filled in; they may still be on their way from the
   * device, hence the promise). The result says which version sampled.
   */
  sample(
    requests: GenerationRequest[],
    groupSize: number,
    options: WorkerGenerateOptions,
    policy: () => PolicySnapshot | undefined | Promise<PolicySnapshot | undefined>,
    signal?: AbortSignal,
  ): Promise<EngineSample>;
  close(): Promise<void>;
}

function regroup<T>(flat: T[], requests: number, groupSize: number): T[][] {
  return Array.from({ length: requests }, (_, i) => flat.slice(i * groupSize, (i + 1) * groupSize));
}

/** A flat batch (request after request, G members each) as an EngineSample. */
function grouped(
  { results, refLogprobs }: { results: GenerationResult[]; refLogprobs?: number[][] },
  requests: number,
  groupSize: number,
  policyVersion: number,
  seconds: number,
): EngineSample {
  return {
    results: regroup(results, requests, groupSize),
    refLogprobs: refLogprobs && regroup(refLogprobs, requests, groupSize),
    policyVersion,
    seconds,
  };
}

/**
 * Samples from the shared model under its lock. The trainer updates the same weights in place, so the
 * version is whatever the newest snapshot says when the lock is taken.
 */
export function mainThreadEngine(model: CausalLM, tokenizer: Tokenizer): RolloutEngine {
  return {
    kind: 'main',
    sample: (requests, groupSize, options, policy, signal) =>
      modelLock(model).run(async () => {
        const policyVersion = (await policy())?.version ?? 0;
        const started = performance.now();
        const sampled = await sampleBatch(model, repeatForGroups(requests, groupSize), options, { tokenizer, signal });
        return grouped(sampled, requests.length, groupSize, policyVersion, (performance.now() - started) / 1000);
      }),
    close: async () => {},
  };
}

/** Samples in a worker thread; ships the newest snapshot first whenever its version changed. */
export async function workerEngine(model: CausalLM, tokenizer: Tokenizer, options: { backend?: string } = {}): Promise<RolloutEngine> {
  const worker = await GeneratorWorker.start({ model, tokenizer, backend: options.backend });
  return {
    kind: 'worker',
    async sample(requests, groupSize, generateOptions, policy, signal) {
      // Both messages are posted once the weights are on the host, nothing else awaited in between: the
      // worker handles them in order, and starts generating without waiting for this (possibly busy)
      // thread to read the policy's acknowledgement.
      const latest = await policy();
      const shipped = latest && latest.version !== worker.policyVersion ? worker.setPolicy(latest) : undefined;
      shipped?.catch(() => {}); // awaited below
      const generated = worker.generate(repeatForGroups(requests, groupSize), generateOptions, signal);
      generated.catch(() => {}); // awaited below
      await shipped;
      const sampled = await generated;
      return grouped(sampled, requests.length, groupSize, sampled.policyVersion, sampled.busyMs / 1000);
    },
    close: () => worker.close(),
  };
}
