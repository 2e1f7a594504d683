// The seven linear projections of a decoder layer that LoRA can target, and their checkpoint paths.
// Kept free of tensor code so the GGUF writer (core/gguf) can name them too.

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjectionName = (typeof PROJECTIONS)[number];

const SECTION: Record<ProjectionName, string> = {
  q_proj: 'self_attn', k_proj: 'self_attn', v_proj: 'self_attn', o_proj: 'self_attn',
  gate_proj: 'mlp', up_proj: 'mlp', down_proj: 'mlp',
};

export function projectionPath(layer: number, name: ProjectionName): string {
  return `model.layers.${layer}.${SECTION[name]}.${name}`;
}
