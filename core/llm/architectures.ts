// The decoder-only families we run, as one table of their differences. Everything not listed here is
// shared: pre-norm RMSNorm blocks, rotary attention with grouped KV heads, a SwiGLU MLP.

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

const flag = (key: string) => (raw: Record<string, unknown>) => raw[key] === true;
const never = () => false;
const always = () => true;

export const ARCHITECTURES: Record<string, ArchitectureTraits> = {
  LlamaForCausalLM: { modelType: 'llama', qkvBias: flag('attention_bias'), outputBias: flag('attention_bias'), mlpBias: flag('mlp_bias'), qkNorm: false },
  MistralForCausalLM: { modelType: 'mistral', qkvBias: never, outputBias: never, mlpBias: never, qkNorm: false },
  Qwen2ForCausalLM: { modelType: 'qwen2', qkvBias: always, outputBias: never, mlpBias: never, qkNorm: false },
  Qwen3ForCausalLM: { modelType: 'qwen3', qkvBias: flag('attention_bias'), outputBias: flag('attention_bias'), mlpBias: never, qkNorm: true },
};

export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES);

/** The architecture named by a config.json (`architectures[0]`, else its `model_type`). */
export function resolveArchitecture(raw: Record<string, unknown>, where: string): { name: string; traits: ArchitectureTraits } {
  const listed = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]).map(String) : [];
  for (const name of listed) if (ARCHITECTURES[name]) return { name, traits: ARCHITECTURES[name] };
  const byType = Object.entries(ARCHITECTURES).find(([, t]) => t.modelType === raw.model_type);
  if (byType && listed.length === 0) return { name: byType[0], traits: byType[1] };
  const what = listed.length ? listed.join(', ') : `model_type ${JSON.stringify(raw.model_type)}`;
  throw new Error(`${where}: unsupported architecture ${what}; supported: ${SUPPORTED_ARCHITECTURES.join(', ')} (model_type ${Object.values(ARCHITECTURES).map((t) => t.modelType).join(', ')})`);
}
