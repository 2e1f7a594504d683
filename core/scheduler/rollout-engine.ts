// Where a rollout engine runs: on the main thread (the tfjs engine on a fork of the loaded model, with
// its own adapter weights) or in a generator worker thread (the same engine in another tfjs instance).
// Either way the scheduler talks to it through the RolloutEngine interface only.
import type { RolloutEngine } from '../engine/interfaces.js';
import type { CausalLM } from '../llm/model.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import { TfjsRolloutEngine } from '../../engines/tfjs/rollout-engine.js';
import { GeneratorWorker } from './generator-worker.js';

/** The tfjs engine on this thread, on `model`'s base weights with its own copy of the adapters. */
export function mainThreadEngine(model: CausalLM, tokenizer: Tokenizer): RolloutEngine {
  return TfjsRolloutEngine.fork(model, tokenizer);
}

/** The tfjs engine in a worker thread (its own tfjs instance loads `model.dir`). */
export async function workerEngine(model: CausalLM, tokenizer: Tokenizer, options: { backend?: string } = {}): Promise<RolloutEngine> {
  const worker = await GeneratorWorker.start({ model, tokenizer, backend: options.backend });
  return worker.engine();
}
