// Mistral: the Llama block without biases.
import { never, type ArchitectureDefinition } from './types.js';

export const mistral: ArchitectureDefinition = { name: 'MistralForCausalLM', modelType: 'mistral', qkvBias: never, outputBias: never, mlpBias: never, qkNorm: false };
