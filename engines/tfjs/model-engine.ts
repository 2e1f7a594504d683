// The tfjs engine's model side as it registers it (core/engine/model-engine.ts): loading and creating
// CausalLMs, LoRA, saving, and the GRPO and SFT trainers. Nodes reach these only through the registry.
import type { ModelEngineDefinition, ModelHandle, SftTrainer as SftTrainerInterface } from '../../core/engine/model-engine.js';
import { attachLora, loadPeftAdapter, savePeftAdapter, withLoraMerged } from './lora.js';
import { CausalLM } from './model.js';
import { createModel, loadModel } from './model-loader.js';
import { policyTrainerFor } from '../webgpu/trainer-choice.js';
import { saveModel } from './save-model.js';
import { packSftBatch } from './sft/batch.js';
import { accuracyProbe } from './sft/probe.js';
import { SftTrainer } from './sft/trainer.js';

/** `model` as the tfjs CausalLM it must be (a model from another engine is refused by name). */
export function tfjsModel(model: ModelHandle): CausalLM {
  if (!(model instanceof CausalLM)) throw new Error(`the tfjs engine cannot use a model held by the ${model.engine} engine`);
  return model;
}

export const tfjsModelEngine: ModelEngineDefinition = {
  name: 'tfjs',
  description: 'TensorFlow.js (cpu, wasm, webgpu, tensorflow): float32 Llama-family models, LoRA and full training, GRPO and SFT.',
  load: (dir, options) => loadModel(dir, options),
  create: (config, options) => createModel(config, options),
  parameterCounts(handle) {
    const model = tfjsModel(handle);
    const count = (tensors: { size: number }[]) => tensors.reduce((total, t) => total + t.size, 0);
    return { base: count(model.baseWeightTensors()), trainable: count(model.trainableVariables()) };
  },
  attachLora(model, config) {
    attachLora(tfjsModel(model), config);
  },
  loadPeftAdapter(model, dir) {
    loadPeftAdapter(tfjsModel(model), dir);
  },
  savePeftAdapter: (model, dir, options) => savePeftAdapter(tfjsModel(model), dir, options),
  async saveModel(handle, dir, options) {
    const model = tfjsModel(handle);
    const save = () => saveModel(model, dir, options);
    if (model.lora && !model.lora.merged) await withLoraMerged(model, save);
    else await save();
  },
  policyTrainer(model, config, options = {}) {
    // On the webgpu backend our own WebGPU trainer, where it computes the graph's loss (trainer-choice.ts).
    const trainer = policyTrainerFor(tfjsModel(model), config, options.warn);
    if (options.dropoutSeed) trainer.seedDropout(options.dropoutSeed);
    return trainer;
  },
  sftTrainer(handle, { fullTraining, ...config }): SftTrainerInterface {
    const model = tfjsModel(handle);
    if (fullTraining) model.trainBaseWeights();
    const trainer = new SftTrainer(model, config);
    return {
      get stepCount() {
        return trainer.stepCount;
      },
      async step(examples, padId, promptLossWeight) {
        const batch = packSftBatch(examples, padId, promptLossWeight);
        try {
          return await trainer.step(batch);
        } finally {
          batch.dispose();
        }
      },
      probe: (tokenizer, template, records, options) => accuracyProbe(model, tokenizer, template, records, options),
      dispose: () => trainer.dispose(),
    };
  },
};
