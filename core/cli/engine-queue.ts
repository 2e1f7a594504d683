// Requests to one engine, merged: while the engine works on a call, the requests that arrive wait; the
// next call takes all that can go together (the same sampling settings; up to maxBatch completions), each
// prompt with its own seed (SamplingOptions.promptSeeds), so a request's answer does not depend on what it
// was merged with. This is how `grpoflow serve` batches across clients (vLLM does it per token; our
// engines take whole batches).
import type { FinishReason, RolloutEngine, SamplingOptions } from '../engine/interfaces.js';
import { rowsOf } from '../engine/rows.js';

/** One prompt's n completions. */
export interface PromptSample {
  ids: number[][];
  logprobs: number[][];
  finishReasons: FinishReason[];
  texts: string[];
}

type SampleSettings = Omit<SamplingOptions, 'seed' | 'promptSeeds' | 'maxBatch'>;

interface SampleJob {
  kind: 'sample';
  key: string;
  prompt: number[];
  n: number;
  settings: SampleSettings;
  seed: number;
  signal?: AbortSignal;
  resolve(value: PromptSample): void;
  reject(error: unknown): void;
}

interface ScoreJob {
  kind: 'score';
  key: string;
  prompt: number[];
  completion: number[];
  temperature: number;
  signal?: AbortSignal;
  resolve(value: Float32Array): void;
  reject(error: unknown): void;
}

type Job = SampleJob | ScoreJob;

/** The engine is gone (its adapter unloaded) before the request ran. */
export class EngineClosedError extends Error {}

export class EngineQueue {
  private jobs: Job[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly engine: RolloutEngine,
    /** Most completions (sampling) or rows (scoring) in one merged call. */
    private readonly maxBatch: number,
  ) {}

  sample(prompt: number[], n: number, settings: SampleSettings, seed: number, signal?: AbortSignal): Promise<PromptSample> {
    return new Promise((resolve, reject) => {
      this.add({ kind: 'sample', key: `sample ${n} ${JSON.stringify(settings)}`, prompt, n, settings, seed, signal, resolve, reject });
    });
  }

  /** Log-probs of `completion` after `prompt` at `temperature` (with the engine's adapter). */
  score(prompt: number[], completion: number[], temperature: number, signal?: AbortSignal): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.add({ kind: 'score', key: `score ${temperature}`, prompt, completion, temperature, signal, resolve, reject });
    });
  }

  /** Refuses new requests, fails the waiting ones, lets the running call finish, then closes the engine. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs.splice(0)) job.reject(new EngineClosedError('the model was unloaded before the request ran'));
    await this.running;
    await this.engine.close();
  }

  private add(job: Job): void {
    if (this.closed) return job.reject(new EngineClosedError('the model was unloaded'));
    this.jobs.push(job);
    this.running ??= this.pump().finally(() => (this.running = undefined));
  }

  private async pump(): Promise<void> {
    // Yield once so requests arriving together are merged.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.jobs.length > 0) {
      this.jobs = this.jobs.filter((job) => {
        if (!job.signal?.aborted) return true;
        job.reject(job.signal.reason);
        return false;
      });
      if (this.jobs.length === 0) break;
      const first = this.jobs[0];
      const batch: Job[] = [];
      let size = 0;
      for (const job of this.jobs) {
        const cost = job.kind === 'sample' ? job.n : 1;
        if (job.key !== first.key || (batch.length > 0 && size + cost > this.maxBatch)) continue;
        batch.push(job);
        size += cost;
      }
      this.jobs = this.jobs.filter((job) => !batch.includes(job));
      try {
        if (first.kind === 'sample') await this.runSample(batch as SampleJob[]);
        else await this.runScore(batch as ScoreJob[]);
      } catch (err) {
        for (const job of batch) job.reject(err);
      }
    }
  }

  private async runSample(batch: SampleJob[]): Promise<void> {
    const { n, settings } = batch[0];
    // One client's request alone may be cancelled with it; a merged call runs for the others.
    const signal = batch.length === 1 ? batch[0].signal : undefined;
    const sampled = await this.engine.sample(
      batch.map((job) => job.prompt),
      n,
      { ...settings, seed: batch[0].seed, promptSeeds: batch.map((job) => job.seed), maxBatch: batch.length * n },
      signal,
    );
    batch.forEach((job, i) => {
      const rows = Array.from({ length: n }, (_, k) => i * n + k);
      const slice = (values: Int32Array | Float32Array, row: number) => Array.from(values.subarray(sampled.completionOffsets[row], sampled.completionOffsets[row + 1]));
      job.resolve({
        ids: rows.map((row) => slice(sampled.completionIds, row)),
        logprobs: rows.map((row) => slice(sampled.logprobs, row)),
        finishReasons: rows.map((row) => sampled.finishReasons[row]),
        texts: rows.map((row) => sampled.texts[row]),
      });
    });
  }

  private async runScore(batch: ScoreJob[]): Promise<void> {
    const rows = rowsOf(
      batch.map((job) => job.prompt),
      batch.map((job) => job.completion),
    );
    const values = await this.engine.score(rows, { adapters: 'on', temperature: batch[0].temperature });
    batch.forEach((job, i) => job.resolve(values.slice(rows.completionOffsets[i], rows.completionOffsets[i + 1])));
  }
}
