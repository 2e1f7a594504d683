// What the `model` edge carries: a model held by a model engine (core/engine/model-engine.ts), as plain
// facts a node may read. Apart from model-engine.ts so core/ports.ts can name it without a cycle.
import type { ModelConfig } from '../llm/config.js';

/** A LoRA adapter's settings, as PEFT names them. */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Projection names (`q_proj` … `down_proj`). */
  targetModules: string[];
  useRslora: boolean;
  seed: number;
}

/** What travels on the `model` edge: a model held by a model engine. */
export interface ModelHandle {
  /** The registered model engine holding the weights (`tfjs`): nodes reach its operations through it. */
  readonly engine: string;
  readonly config: ModelConfig;
  /** The folder it was loaded from (absent: made in memory, as model.create does). */
  readonly dir?: string;
  /** The attached LoRA adapter, if any. */
  readonly lora?: { readonly config: LoraConfig; readonly merged: boolean };
  dispose(): void;
}

