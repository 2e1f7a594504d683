// LoRA's data types, apart from lora.ts so the model (which runs the adapter branch) and lora.ts
// (which builds adapters on the model) do not import each other.
import type { tf } from './tf.js';

import type { LoraConfig } from '../../core/engine/model-handle.js';

export type { LoraConfig };

export interface LoraAdapter {
  /** [r, in] */
  A: tf.Variable;
  /** [out, r] */
  B: tf.Variable;
}

export interface LoraState {
  config: LoraConfig;
  scale: number;
  /** Keyed by module path, e.g. `model.layers.0.self_attn.q_proj`. */
  adapters: Map<string, LoraAdapter>;
  /** True while B·A is folded into the base weights (the adapter branch is then skipped). */
  merged: boolean;
}

/** What attachLora takes: dropout, rsLoRA and seed default to 0, false and 0. */
export type LoraOptions = Pick<LoraConfig, 'r' | 'alpha' | 'targetModules'> & Partial<Pick<LoraConfig, 'dropout' | 'useRslora' | 'seed'>>;

export type LoraSnapshot = Record<string, { shape: number[]; data: Float32Array }>;

