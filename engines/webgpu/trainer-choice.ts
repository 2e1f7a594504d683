// Which policy trainer train.grpo gets: on the tfjs `webgpu` backend (`--backend webgpu`, or `auto` when it
// lands there: a real GPU) our own WebGPU trainer (policy-trainer.ts), elsewhere the tfjs one. The one
// place the choice is made, so the engine registry can take it over. GRPOFLOW_TRAINER=tfjs keeps the tfjs
// trainer on webgpu; GRPOFLOW_WEBGPU_PRECISION=f16|f32 overrides the precision (default f16 where the
// adapter has shader-f16).
import type { PolicyTrainer, PolicyWeights, ScoreOptions, StepRows, TrainerState } from '../../core/engine/interfaces.js';
import type { Rows, TokenLogprobs } from '../../core/engine/rows.js';
import type { TrainStepConfig } from '../../core/grpo/loss-spec.js';
import type { RngState } from '../../core/rng.js';
import type { GrpoTrainerConfig } from '../tfjs/grpo/train-step.js';
import { loraSnapshotAsync } from '../tfjs/lora.js';
import type { CausalLM } from '../tfjs/model.js';
import { modelTensors } from '../tfjs/save-model.js';
import { TfjsPolicyTrainer } from '../tfjs/policy-trainer.js';
import { tf } from '../tfjs/tf.js';
import { createGpuContext } from './device.js';
import { lossOptionsNotOnDevice, WebGpuPolicyTrainer } from './policy-trainer.js';
import { GpuLoraWeights, GpuModelWeights, type Precision } from './weights.js';

/** What train.grpo uses of its trainer. */
export type GrpoPolicyTrainer = PolicyTrainer & { seedDropout(state: RngState): void; restore(state: TrainerState, where?: string): void };

export function policyTrainerFor(model: CausalLM, config: GrpoTrainerConfig, warn?: (message: string) => void): GrpoPolicyTrainer {
  if (tf.getBackend() === 'webgpu' && process.env.GRPOFLOW_TRAINER !== 'tfjs') {
    const unsupported = lossOptionsNotOnDevice(config);
    if (unsupported.length === 0) return new DeferredWebGpuTrainer(model, config);
    warn?.(`training with the tfjs trainer: the webgpu trainer does not compute ${unsupported.join(', ')} yet`);
  }
  return new TfjsPolicyTrainer(model, config);
}

/** The tfjs model's weights (host copies, one tensor at a time, in the checkpoint's layout) and adapter
 *  values, on our own device. */
async function webgpuTrainerFrom(model: CausalLM, config: GrpoTrainerConfig): Promise<WebGpuPolicyTrainer> {
  const lora = model.lora;
  if (!lora) throw new Error('the model has no LoRA adapter (the webgpu policy trainer trains LoRA weights)');
  if (lora.merged) throw new Error('webgpu trainer: the adapter is merged into the weights; unmerge it first');
  const ctx = await createGpuContext();
  if (!ctx) throw new Error('webgpu trainer: no WebGPU adapter');
  const wanted = process.env.GRPOFLOW_WEBGPU_PRECISION;
  if (wanted !== undefined && wanted !== 'f16' && wanted !== 'f32') throw new Error(`GRPOFLOW_WEBGPU_PRECISION must be f16 or f32 (got "${wanted}")`);
  const precision: Precision = (wanted as Precision | undefined) ?? (ctx.caps.shaderF16 ? 'f16' : 'f32');
  // Host copies of every weight first, in the checkpoint layout (fromHost is synchronous, tfjs reads back
  // asynchronously): host memory holds the model once in f32 meanwhile.
  const host = new Map(Object.entries(await modelTensors(model)).map(([name, t]) => [name, t.data]));
  const base = GpuModelWeights.fromHost(ctx, model.config, precision, (spec) => {
    const values = host.get(spec.name)!;
    host.delete(spec.name);
    return values;
  });
  const adapters = GpuLoraWeights.attach(ctx, base, { r: lora.config.r, alpha: lora.config.alpha, targetModules: lora.config.targetModules, useRslora: lora.config.useRslora, dropout: lora.config.dropout });
  adapters.set(await loraSnapshotAsync(model), 'the model\'s LoRA adapter');
  return new WebGpuPolicyTrainer(ctx, base, adapters, { betas: config.betas, adamEps: config.adamEps, weightDecay: config.weightDecay });
}

/** Our trainer, built on first use (creating the device and uploading is asynchronous; train.grpo
 *  constructs its trainer synchronously). A restore before that is applied once it exists. */
class DeferredWebGpuTrainer implements GrpoPolicyTrainer {
  private trainer?: WebGpuPolicyTrainer;
  private building?: Promise<WebGpuPolicyTrainer>;
  private restored?: { state: TrainerState; where?: string };

  constructor(
    private readonly model: CausalLM,
    private readonly config: GrpoTrainerConfig,
  ) {}

  private ready(): Promise<WebGpuPolicyTrainer> {
    this.building ??= webgpuTrainerFrom(this.model, this.config).then((t) => {
      this.trainer = t;
      if (this.restored) t.restore(this.restored.state, this.restored.where);
      return t;
    });
    return this.building;
  }

  get version(): number {
    return this.trainer?.version ?? ((this.restored?.state.optimizer as { step?: number } | undefined)?.step ?? 0);
  }

  async step(rows: StepRows, spec: TrainStepConfig): Promise<Record<string, number>> {
    return (await this.ready()).step(rows, spec);
  }

  async score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return (await this.ready()).score(rows, options);
  }

  async weights(): Promise<PolicyWeights> {
    return (await this.ready()).weights();
  }

  async save(): Promise<TrainerState> {
    return (await this.ready()).save();
  }

  restore(state: TrainerState, where?: string): void {
    if (this.trainer) this.trainer.restore(state, where);
    else this.restored = { state, where };
  }

  /** LoRA dropout is not computed by the webgpu trainer (a non-zero dropout is refused when it is built). */
  seedDropout(): void {}

  dispose(): void {
    const t = this.trainer;
    if (!t) return;
    t.dispose();
    t.lora.destroy();
    t.base.destroy();
  }
}
