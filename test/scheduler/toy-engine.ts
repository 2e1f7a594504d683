// A toy rollout engine as a plugin would write it: no tensor library, deterministic "sampling" that
// depends on the weights set (each completion token = prompt token + the sum of the weights + the
// completion's index), and a busy mode that never yields (to test cancellation through checkCancelled).
// It is registered through definePlugin and run by the worker host in test/scheduler/worker-host.test.ts.
import type { PolicyWeights, RolloutEngine, RolloutEngineArgs, RolloutEngineDefinition, SampledRows, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import { rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { isMainThread } from 'node:worker_threads';

export class ToyEngine implements RolloutEngine {
  readonly name = 'toy';
  private offset = 0;
  private version = 0;

  constructor(
    private readonly base: number,
    private readonly checkCancelled: () => void = () => {},
  ) {}

  async setWeights(policy: PolicyWeights): Promise<void> {
    const bad = Object.keys(policy.weights).find((name) => !name.startsWith('toy.'));
    if (bad) throw new Error(`toy engine: no weight named ${bad}`);
    this.offset = Object.values(policy.weights).reduce((sum, t) => sum + t.data.reduce((a, b) => a + b, 0), 0);
    this.version = policy.version;
  }

  async sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal): Promise<SampledRows> {
    const completions: number[][] = [];
    const groups: number[] = [];
    prompts.forEach((prompt, p) => {
      for (let k = 0; k < n; k++) {
        const ids: number[] = [];
        for (let t = 0; t < options.maxNewTokens; t++) {
          // A busy engine: compute that never yields, so only checkCancelled can see a cancel.
          if (options.temperature === -1) for (let spin = performance.now(); performance.now() - spin < 1; );
          this.checkCancelled();
          signal?.throwIfAborted();
          ids.push(this.base + Array.from(prompt).at(t % prompt.length)! + this.offset + k);
        }
        completions.push(ids);
        groups.push(p);
      }
    });
    const rows = rowsOf(groups.map((g) => prompts[g]), completions, groups);
    return {
      ...rows,
      logprobs: Float32Array.from(rows.completionIds, (id) => -id / 1000),
      finishReasons: completions.map(() => 'length' as const),
      texts: completions.map((ids) => ids.join(' ')),
      policyVersion: this.version,
      seconds: 0,
    };
  }

  async score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return Float32Array.from(rows.completionIds, (id) => (options.adapters === 'on' ? -(id - this.offset) : -id) / options.temperature);
  }

  async close(): Promise<void> {}
}

/** The toy engine's definition; `threadOfLastCreate` tells a test where `create` last ran. */
export const toyRolloutEngine: RolloutEngineDefinition = {
  name: 'toy',
  description: 'a toy engine for the worker host tests',
  threads: ['main', 'worker'],
  async create(args: RolloutEngineArgs) {
    return new ToyEngine((args.model as { base: number }).base);
  },
  worker: {
    module: import.meta.url,
    exportName: 'toyRolloutEngine',
    prepare: (args) => {
      const { base } = args.model as { base: number; fail?: string };
      if ((args.model as { fail?: string }).fail === 'prepare') throw new Error('toy engine: cannot prepare');
      return { base, fail: (args.model as { fail?: string }).fail, backend: args.backend };
    },
    async create(prepared, { checkCancelled }) {
      const { base, fail } = prepared as { base: number; fail?: string };
      if (fail === 'create') throw new Error(`toy engine: cannot start (in the main thread: ${isMainThread})`);
      return new ToyEngine(base, checkCancelled);
    },
  },
};

export const toyEnginePlugin = definePlugin({ name: 'toy', apiVersion: PLUGIN_API_VERSION, nodes: [], rolloutEngines: [toyRolloutEngine] });
