// The tfjs engine as the core plugin registers it: the rollout engine `tfjs` on this thread (a fork of
// the loaded model with its own adapter copy) or, run by the scheduler's worker host, in a worker thread
// (its own tfjs instance loads the model folder).
import type { PolicyWeights, RolloutEngine, RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import { initBackend, type BackendName } from './backend.js';
import { attachLora, loraSnapshotAsync, type LoraConfig } from './lora.js';
import type { CausalLM } from './model.js';
import { loadModel } from './model-loader.js';
import { TfjsRolloutEngine } from './rollout-engine.js';

/** The tfjs engine on this thread, on `model`'s base weights with its own copy of the adapters. */
export function mainThreadEngine(model: CausalLM, tokenizer: Tokenizer): RolloutEngine {
  return TfjsRolloutEngine.fork(model, tokenizer);
}

/** What a worker thread needs to build the tfjs engine: the model folder, the adapter's config and its weights now. */
export interface TfjsWorkerModel {
  modelDir: string;
  lora?: LoraConfig;
  policy?: PolicyWeights;
}

export const tfjsRolloutEngine: RolloutEngineDefinition = {
  name: 'tfjs',
  description: 'TensorFlow.js (cpu, wasm, webgpu): continuous batching over a KV cache; on the main thread or in a worker thread with its own tfjs instance.',
  threads: ['main', 'worker'],
  async create({ model, tokenizer }) {
    return mainThreadEngine(model as CausalLM, tokenizer);
  },
  worker: {
    module: import.meta.url,
    exportName: 'tfjsRolloutEngine',
    async prepare({ model }): Promise<TfjsWorkerModel> {
      const lm = model as CausalLM;
      if (!lm.dir) throw new Error('the model was not loaded from a folder, so a worker thread cannot load it (use thread: main)');
      if (lm.lora?.merged) throw new Error('the LoRA adapter is merged into the weights; unmerge it first');
      return {
        modelDir: lm.dir,
        lora: lm.lora ? { ...lm.lora.config, targetModules: [...lm.lora.config.targetModules] } : undefined,
        policy: lm.lora ? { version: 0, weights: await loraSnapshotAsync(lm) } : undefined,
      };
    },
    async create(prepared, { tokenizer, backend, checkCancelled }) {
      const { modelDir, lora, policy } = prepared as TfjsWorkerModel;
      await initBackend((backend ?? 'wasm') as BackendName);
      const model = await loadModel(modelDir);
      if (lora) attachLora(model, lora);
      // Compute never yields mid-batch, so the cancel flag is read after every token.
      const engine = new TfjsRolloutEngine(model, tokenizer, { onToken: checkCancelled, ownsModel: true });
      if (policy) await engine.setWeights(policy);
      return engine;
    },
  },
};
