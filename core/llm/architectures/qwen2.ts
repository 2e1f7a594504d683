// Qwen2 / Qwen2.5: q/k/v projections always carry a bias.
import { always, never, type ArchitectureDefinition } from './types.js';

export const qwen2: ArchitectureDefinition = { name: 'Qwen2ForCausalLM', modelType: 'qwen2', qkvBias: always, outputBias: never, mlpBias: never, qkNorm: false };
