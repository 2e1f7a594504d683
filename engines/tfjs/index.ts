// The tfjs engine as the core plugin registers it: the rollout engine `tfjs` on this thread (a fork of
// the loaded model with its own adapter copy) or in a generator worker thread (its own tfjs instance
// loads the model folder).
import type { RolloutEngine, RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import type { CausalLM } from './model.js';
import { TfjsRolloutEngine } from './rollout-engine.js';
import { GeneratorWorker } from './worker/generator-worker.js';

/** The tfjs engine on this thread, on `model`'s base weights with its own copy of the adapters. */
export function mainThreadEngine(model: CausalLM, tokenizer: Tokenizer): RolloutEngine {
  return TfjsRolloutEngine.fork(model, tokenizer);
}

/** The tfjs engine in a worker thread (its own tfjs instance loads `model.dir`). */
export async function workerEngine(model: CausalLM, tokenizer: Tokenizer, options: { backend?: string } = {}): Promise<RolloutEngine> {
  const worker = await GeneratorWorker.start({ model, tokenizer, backend: options.backend });
  return worker.engine();
}

export const tfjsRolloutEngine: RolloutEngineDefinition = {
  name: 'tfjs',
  description: 'TensorFlow.js (cpu, wasm, webgpu): continuous batching over a KV cache; on the main thread or in a worker thread with its own tfjs instance.',
  threads: ['main', 'worker'],
  async create({ model, tokenizer, thread, backend }) {
    const lm = model as CausalLM;
    return thread === 'worker' ? workerEngine(lm, tokenizer, { backend }) : mainThreadEngine(lm, tokenizer);
  },
};
