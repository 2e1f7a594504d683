// The model engine: what the model-side nodes (model.load, model.create, lora.apply, train.grpo,
// train.sft, the exports) need from a tensor engine, behind one definition the engine registers
// (`definePlugin({ modelEngines: [...] })`), the way rollout engines are registered. The `model` edge
// carries a ModelHandle: plain facts a node may read, and the name of the engine that holds the weights;
// everything else goes through that engine. Nothing here imports a tensor library.
import type { ModelConfig } from '../llm/config.js';
import type { SafetensorsWriteDtype } from '../llm/safetensors.js';
import type { ChatTemplate } from '../llm/chat-template.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { TrainStepConfig } from '../grpo/loss-spec.js';
import type { RngState } from '../rng.js';
import type { SftExample } from '../sft/examples.js';
import type { PromptRecord } from '../prompt-record.js';
import type { PolicyTrainer, RolloutEngineDefinition } from './interfaces.js';
import type { LoraConfig, ModelHandle } from './model-handle.js';

export type { LoraConfig, ModelHandle } from './model-handle.js';

export interface SaveModelOptions {
  /** Storage dtype of model.safetensors (math stays float32 on load). */
  dtype: SafetensorsWriteDtype;
  /** Copy the tokenizer files found in this folder (tokenizer.json, tokenizer_config.json, ...). */
  tokenizerDir?: string;
  /** Write these files instead (name → text, or an object written as JSON). */
  tokenizerFiles?: Record<string, string | object>;
  /** Extra generation_config.json fields (bos/eos ids are filled in from the model's config). */
  generationConfig?: Record<string, unknown>;
}

/** The GRPO trainer's settings: the loss spec plus the optimiser's. */
export interface PolicyTrainerConfig extends TrainStepConfig {
  /** Optimiser steps per generation batch (TRL num_iterations, μ); old log-probs come from before the first. */
  numIterations?: number;
  betas?: [number, number];
  adamEps?: number;
  weightDecay?: number;
}

export interface SftTrainerConfig {
  /** Learning rate after `step` completed updates. */
  learningRate: (step: number) => number;
  weightDecay: number;
  maxGradNorm: number;
  betas?: [number, number];
  /** Train every base weight too (a model trained from scratch), not only the adapter. */
  fullTraining?: boolean;
}

export interface SftStepResult {
  step: number;
  loss: number;
  gradNorm: number;
  learningRate: number;
  completionTokens: number;
  /** Tokens in the padded batch (rows × longest row). */
  batchTokens: number;
}

/** A greedy accuracy probe on held-out problems (train.sft's early stop). */
export interface ProbeResult {
  accuracy: number;
  formatRate: number;
  /** Accuracy and count per fields.level (key `all` when records carry no level). */
  byLevel: Record<string, { accuracy: number; count: number }>;
  samples: { id: string; completion: string; answer: string; correct: boolean }[];
}

export interface ProbeOptions {
  maxNewTokens: number;
  answerField?: string;
  maxBatch?: number;
  signal?: AbortSignal;
}

/** Supervised fine-tuning on a model's trainable weights. */
export interface SftTrainer {
  readonly stepCount: number;
  /** One optimiser step on the examples, padded with `padId`; prompt tokens weigh `promptLossWeight`. */
  step(examples: readonly SftExample[], padId: number, promptLossWeight: number): Promise<SftStepResult>;
  /** Greedy accuracy of the model as it is now on held-out records. */
  probe(tokenizer: Tokenizer, template: ChatTemplate, records: readonly PromptRecord[], options: ProbeOptions): Promise<ProbeResult>;
  dispose(): void;
}

export interface ModelEngineDefinition {
  name: string;
  description: string;
  /** A checkpoint folder in the Hugging Face layout. */
  load(dir: string, options: { dtype: 'float32'; seed: number }): Promise<ModelHandle>;
  /** A randomly initialised model. */
  create(config: ModelConfig, options: { seed: number }): ModelHandle;
  /** Parameter counts: the base weights (tied embeddings once), and the weights training would change now. */
  parameterCounts(model: ModelHandle): { base: number; trainable: number };
  /** Attaches a fresh LoRA adapter (PEFT's init; base weights frozen). */
  attachLora(model: ModelHandle, config: LoraConfig): void;
  /** Attaches a PEFT adapter folder's adapter with its weights. */
  loadPeftAdapter(model: ModelHandle, dir: string): void;
  /** Writes the model's adapter in PEFT's format. */
  savePeftAdapter(model: ModelHandle, dir: string, options?: { baseModelNameOrPath?: string }): Promise<void>;
  /** Writes the model in the Hugging Face layout, its LoRA adapter (if any) merged into copies of the weights. */
  saveModel(model: ModelHandle, dir: string, options: SaveModelOptions): Promise<void>;
  /** The GRPO policy trainer on the model's LoRA weights (it owns them from then on). */
  policyTrainer(model: ModelHandle, config: PolicyTrainerConfig, options?: { dropoutSeed?: RngState; warn?: (message: string) => void }): PolicyTrainer;
  sftTrainer(model: ModelHandle, config: SftTrainerConfig): SftTrainer;
}

/** How nodes find engines: `ctx.services` of a run holds these lookups (core/runtime/run-graph.ts). */
export interface EngineServices {
  rolloutEngines?: (name: string) => RolloutEngineDefinition | undefined;
  modelEngines?: (name: string) => ModelEngineDefinition | undefined;
}

/** The rollout engine registered as `name`, or a clear error naming `where`. */
export function rolloutEngineNamed(services: object, name: string, where: string): RolloutEngineDefinition {
  const engine = (services as EngineServices).rolloutEngines?.(name);
  if (!engine) throw new Error(`${where}: no rollout engine named "${name}" is installed (grpoflow nodes lists them)`);
  return engine;
}

/** The model engine registered as `name`, or a clear error naming `where`. */
export function modelEngineNamed(services: object, name: string, where: string): ModelEngineDefinition {
  const engine = (services as EngineServices).modelEngines?.(name);
  if (!engine) throw new Error(`${where}: no model engine named "${name}" is installed (grpoflow nodes lists them)`);
  return engine;
}

/** The model engine holding `model`'s weights. */
export function modelEngineOf(services: object, model: ModelHandle, where: string): ModelEngineDefinition {
  return modelEngineNamed(services, model.engine, where);
}
