// What an architecture family declares: how its config.json differs from the shared decoder block
// (pre-norm RMSNorm, rotary attention with grouped KV heads, a SwiGLU MLP), which every engine runs.

export interface ArchitectureTraits {
  /** `model_type` in config.json. */
  modelType: string;
  /** q/k/v projections carry a bias (Qwen2 always; Llama/Mistral when `attention_bias`). */
  qkvBias: (raw: Record<string, unknown>) => boolean;
  /** o_proj carries a bias. */
  outputBias: (raw: Record<string, unknown>) => boolean;
  /** gate/up/down projections carry a bias. */
  mlpBias: (raw: Record<string, unknown>) => boolean;
  /** RMSNorm over each head of q and k before rotary embedding (Qwen3). */
  qkNorm: boolean;
}

/** One family, as a plugin registers it (`definePlugin({ architectures: [...] })`). */
export interface ArchitectureDefinition extends ArchitectureTraits {
  /** `architectures[0]` in config.json, e.g. `LlamaForCausalLM`. */
  name: string;
}

export const flag = (key: string) => (raw: Record<string, unknown>) => raw[key] === true;
export const never = () => false;
export const always = () => true;
