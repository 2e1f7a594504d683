// The WebGPU rollout engine as the core plugin registers it (`webgpu`): our own decode loop on a Dawn
// device, built from the graph's model resource (a CausalLM loaded by the tfjs engine: its base weights
// are read once and uploaded; its LoRA adapter's layout and current weights are taken over).
import type { RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import { PEFT_PREFIX } from '../../core/llm/peft-config.js';
import type { CausalLM } from '../tfjs/model.js';
import { getParameter, parameterSpecs } from '../tfjs/parameters.js';
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
  const host = new Map<string, Float32Array>();
  for (const spec of parameterSpecs(model.config)) {
    const data = (await getParameter(model.weights, spec).data()) as Float32Array;
    if (!spec.transposed) {
      host.set(spec.name, data);
      continue;
    }
    // Held as [in, out] by the tfjs model; the decode kernels read the checkpoint's [out, in].
    const [out, inF] = spec.shape;
    const t = new Float32Array(data.length);
    for (let i = 0; i < inF; i++) for (let o = 0; o < out; o++) t[o * inF + i] = data[i * out + o];
    host.set(spec.name, t);
  }
  const parameters = (name: string): Float32Array => {
    const data = host.get(name);
    if (!data) throw new Error(`webgpu engine: the model has no parameter ${name}`);
    return data;
  };
  let adapter: LoraWeights | undefined;
  if (lora) {
    adapter = {};
    for (const [path, a] of lora.adapters) {
      adapter[`${PEFT_PREFIX}${path}.lora_A.weight`] = { shape: a.A.shape, data: (await a.A.data()) as Float32Array };
      adapter[`${PEFT_PREFIX}${path}.lora_B.weight`] = { shape: a.B.shape, data: (await a.B.data()) as Float32Array };
    }
  }
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
