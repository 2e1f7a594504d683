// The tfjs rollout engine: continuous-batching generation (generate.ts) and scoring on a
// CausalLM whose adapter weights are its own (a fork of the loaded model sharing the base tensors, or a
// model it loaded itself in a worker thread). Weights arrive only through setWeights.
import type { PolicyWeights, RolloutEngine, SampledRows, SampleHooks, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import { rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { repeatForGroups } from './generate.js';
import { Rng } from '../../core/rng.js';
import { detachLora, forkWithOwnAdapters, loadLoraSnapshot } from './lora.js';
import type { CausalLM } from './model.js';
import { tf } from './tf.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import { scoreRowsWith } from './grpo/train-step.js';
import { sampleBatch } from './sample-batch.js';

export interface TfjsRolloutEngineOptions {
  /** Called after every sampled token (a worker thread checks its cancel flag here: compute never yields). */
  onToken?: () => void;
  /** The version of the weights the model holds now. Default 0. */
  version?: number;
  /** close() disposes the model too (an engine that loaded its own, in a worker thread). */
  ownsModel?: boolean;
}

export class TfjsRolloutEngine implements RolloutEngine {
  readonly name = 'tfjs';
  private version: number;
  /** Calls run one at a time, in the order made (weights never change under a sample in progress). */
  private queue: Promise<unknown> = Promise.resolve();

  /** Takes ownership of `model` (its adapters are changed by setWeights and freed by close). */
  constructor(
    readonly model: CausalLM,
    private readonly tokenizer: Tokenizer,
    private readonly options: TfjsRolloutEngineOptions = {},
  ) {
    this.version = options.version ?? 0;
  }

  /** An engine on `model`'s base weights with its own copy of the adapter weights as they are now. */
  static fork(model: CausalLM, tokenizer: Tokenizer, options: TfjsRolloutEngineOptions = {}): TfjsRolloutEngine {
    return new TfjsRolloutEngine(forkWithOwnAdapters(model), tokenizer, options);
  }

  get policyVersion(): number {
    return this.version;
  }

  setWeights(policy: PolicyWeights): Promise<void> {
    return this.inTurn(async () => this.load(policy));
  }

  sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal, hooks: SampleHooks = {}): Promise<SampledRows> {
    return this.inTurn(() => this.sampleNow(prompts, n, options, signal, hooks));
  }

  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return this.inTurn(() => scoreRowsWith(this.model, rows, { ...options, microBatchSize: options.microBatchSize ?? 16 }));
  }

  close(): Promise<void> {
    return this.inTurn(async () => (this.options.ownsModel ? this.model.dispose() : detachLora(this.model)));
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private load(policy: PolicyWeights): void {
    if (Object.keys(policy.weights).length > 0) {
      if (!this.model.lora) throw new Error(`policy version ${policy.version} carries adapter weights, but the model has no LoRA adapter (only LoRA policies can be shipped)`);
      // tidy frees the host-side tensors loadLoraSnapshot builds; the variables keep their new values.
      tf.tidy(() => loadLoraSnapshot(this.model, policy.weights, `policy version ${policy.version}`));
    }
    this.version = policy.version;
  }

  private async sampleNow(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal: AbortSignal | undefined, hooks: SampleHooks): Promise<SampledRows> {
    const started = performance.now();
    const { maxNewTokens, reference, merged, promptSeeds, ...sampling } = options;
    const promptLists = prompts.map((p) => Array.from(p));
    if (promptSeeds && promptSeeds.length !== promptLists.length) throw new Error(`promptSeeds has ${promptSeeds.length} seeds for ${promptLists.length} prompts`);
    // With promptSeeds, prompt i's generators are drawn from its own seed as a call with it alone would draw them.
    const seedOf = promptSeeds?.map((seed) => new Rng(seed));
    const requests = repeatForGroups(promptLists.map((promptIds, i) => ({ promptIds, maxNewTokens, i })), n).map(({ promptIds, i }) => ({
      promptIds,
      maxNewTokens,
      rng: seedOf?.[i].fork(),
    }));
    const onToken = this.options.onToken;
    const logprobMode = sampling.logprobMode ?? 'sampled'; // the SamplingOptions contract's default
    const { results, refLogprobs } = await sampleBatch(this.model, requests, { ...sampling, logprobMode, merged, reference }, {
      tokenizer: this.tokenizer,
      signal,
      onToken: onToken && (() => onToken()),
      onFinish: hooks.onFinished && (() => hooks.onFinished!()),
    });
    const rows = rowsOf(
      requests.map((r) => r.promptIds),
      results.map((r) => r.ids),
      requests.map((_, i) => Math.floor(i / n)),
    );
    const logprobs = new Float32Array(rows.completionIds.length);
    results.forEach((r, i) => logprobs.set(r.logprobs, rows.completionOffsets[i]));
    let ref: Float32Array | undefined;
    if (refLogprobs) {
      ref = new Float32Array(rows.completionIds.length);
      refLogprobs.forEach((values, i) => ref!.set(values, rows.completionOffsets[i]));
    }
    return {
      ...rows,
      logprobs,
      refLogprobs: ref,
      finishReasons: results.map((r) => r.finishReason),
      texts: results.map((r) => r.text ?? ''),
      policyVersion: this.version,
      seconds: (performance.now() - started) / 1000,
    };
  }

}
