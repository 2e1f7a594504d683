// Llama 2/3/3.1/3.2: biases only with attention_bias / mlp_bias (llama3 rope scaling is config.ts's).
import { flag, type ArchitectureDefinition } from './types.js';

export const llama: ArchitectureDefinition = { name: 'LlamaForCausalLM', modelType: 'llama', qkvBias: flag('attention_bias'), outputBias: flag('attention_bias'), mlpBias: flag('mlp_bias'), qkNorm: false };
