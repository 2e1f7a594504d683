// The WebGPU rollout engine as the core plugin registers it (`webgpu`): our own decode loop on a Dawn
// device, built from the graph's model resource (a CausalLM loaded by the tfjs engine: its base weights
// are read once and uploaded; its LoRA adapter's layout and current weights are taken over).
import type { RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import type { CausalLM } from '../tfjs/model.js';
import { loraSnapshotAsync } from '../tfjs/lora.js';
import { modelTensors } from '../tfjs/save-model.js';
import { createGpuContext, type GpuContext } from './device.js';
import type { LoraWeights } from './decode/decoder.js';
import type { WeightPrecision } from './decode/linear.js';
import { WebGpuRolloutEngine, type WebGpuEngineSetup } from './rollout-engine.js';

/** The precision of the base weights: `GRPOFLOW_WEBGPU_PRECISION` (f32 | f16), else f32 on a software
 *  adapter (lavapipe: exact, for the specs) and f16 on a real GPU (half the bytes a decode step reads). */
export function defaultPrecision(ctx: GpuContext): WeightPrecision {
  const chosen = process.env.GRPOFLOW_WEBGPU_PRECISION;
  if (chosen === 'f32' || chosen === 'f16') return chosen;
  if (chosen) throw new Error(`GRPOFLOW_WEBGPU_PRECISION must be f32 or f16, got "${chosen}"`);
  return ctx.caps.software ? 'f32' : 'f16';
}

/** The engine's setup from a tfjs CausalLM: base weights in the checkpoint's layout, the adapter as it is
 *  now. Read with async data(): tfjs-webgpu in Node cannot read GPU memory synchronously. */
export async function setupFromCausalLM(model: CausalLM, tokenizer: Tokenizer | undefined, precision: WeightPrecision): Promise<WebGpuEngineSetup> {
  const lora = model.lora;
  if (lora?.merged) throw new Error("webgpu engine: the model's adapter is merged into its weights; unmerge it first");
  // The checkpoint layout ([out, in] projections) the decode kernels read, and the adapter by PEFT name.
  const tensors = await modelTensors(model);
  const parameters = (name: string): Float32Array => {
    const tensor = tensors[name];
    if (!tensor) throw new Error(`webgpu engine: the model has no parameter ${name}`);
    return tensor.data;
  };
  const adapter: LoraWeights | undefined = lora ? await loraSnapshotAsync(model) : undefined;
  return {
    config: model.config,
    parameters,
    lora: lora ? { rank: lora.config.r, scale: lora.scale, weights: adapter } : undefined,
    precision,
    tokenizer,
  };
}

export async function createWebGpuEngine(model: CausalLM, tokenizer: Tokenizer, ctx?: GpuContext): Promise<WebGpuRolloutEngine> {
  const device = ctx ?? (await createGpuContext());
  if (!device) throw new Error('webgpu engine: no WebGPU adapter on this machine (install the `webgpu` package and a Vulkan driver, e.g. mesa-vulkan-drivers)');
  return WebGpuRolloutEngine.create(device, await setupFromCausalLM(model, tokenizer, defaultPrecision(device)));
}

export const webgpuRolloutEngine: RolloutEngineDefinition = {
  name: 'webgpu',
  description: 'Our own WebGPU decode loop (Dawn): KV cache slots on the GPU, shared prompt prefill, continuous batching, sampling on the GPU, LoRA on the fly.',
  threads: ['main'],
  computesOffThread: true,
  async create({ model, tokenizer }) {
    return createWebGpuEngine(model as CausalLM, tokenizer);
  },
};
