// Qwen3: RMSNorm over each head of q and k before the rotary embedding.
import { flag, never, type ArchitectureDefinition } from './types.js';

export const qwen3: ArchitectureDefinition = { name: 'Qwen3ForCausalLM', modelType: 'qwen3', qkvBias: flag('attention_bias'), outputBias: flag('attention_bias'), mlpBias: never, qkNorm: true };
