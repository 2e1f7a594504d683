// The model's parameters as one named list, in the checkpoint's names and layouts: the loader fills the
// weights from it, the saver writes them by it, LoRA finds its target projections in it, and full
// training turns each into a variable. A family that adds a parameter adds it here once.
import type { ModelConfig } from '../../core/llm/config.js';
import type { tf } from './tf.js';
import { PROJECTIONS, projectionPath, type ProjectionName } from '../../core/llm/projections.js';

export interface Linear {
  /** [in, out]: the transpose of the checkpoint's [out, in], so y = x · weightT. */
  weightT: tf.Tensor2D;
  bias?: tf.Tensor1D;
  inFeatures: number;
  outFeatures: number;
  /** Module path as in the checkpoint, e.g. `model.layers.0.self_attn.q_proj`. */
  path: string;
}

export interface DecoderLayer {
  inputNorm: tf.Tensor1D;
  postAttentionNorm: tf.Tensor1D;
  qNorm?: tf.Tensor1D;
  kNorm?: tf.Tensor1D;
  proj: Record<ProjectionName, Linear>;
}

export interface ModelWeights {
  embedTokens: tf.Tensor2D; // [V, H]
  lmHead: tf.Tensor2D; // [V, H]; the same tensor as embedTokens when tied
  finalNorm: tf.Tensor1D;
  layers: DecoderLayer[];
}

/** Where a parameter lives in ModelWeights. */
export type ParameterSlot =
  | { kind: 'embedTokens' }
  | { kind: 'lmHead' }
  | { kind: 'finalNorm' }
  | { kind: 'norm'; layer: number; norm: 'inputNorm' | 'postAttentionNorm' | 'qNorm' | 'kNorm' }
  | { kind: 'projection'; layer: number; projection: ProjectionName; part: 'weight' | 'bias' };

export interface ParameterSpec {
  /** The checkpoint (transformers) name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** The checkpoint's shape ([out, in] for a projection weight). */
  shape: number[];
  /** Held transposed in the model ([in, out], so y = x · weightT). */
  transposed: boolean;
  slot: ParameterSlot;
}

/** A projection weight's checkpoint shape [out, in]. */
export function projectionShape(config: ModelConfig, name: ProjectionName): [number, number] {
  const { hiddenSize: h, numHeads, numKvHeads, headDim, intermediateSize: m } = config;
  switch (name) {
    case 'q_proj': return [numHeads * headDim, h];
    case 'k_proj':
    case 'v_proj': return [numKvHeads * headDim, h];
    case 'o_proj': return [h, numHeads * headDim];
    case 'gate_proj':
    case 'up_proj': return [m, h];
    case 'down_proj': return [h, m];
  }
}

function hasBias(config: ModelConfig, name: ProjectionName): boolean {
  if (name === 'q_proj' || name === 'k_proj' || name === 'v_proj') return config.attentionBias;
  if (name === 'o_proj') return config.outputBias;
  return config.mlpBias;
}

/** Every parameter of a model with this config, once (a tied lm_head is the embedding, not listed). */
export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const { hiddenSize: h, vocabSize: v, headDim } = config;
  const specs: ParameterSpec[] = [{ name: 'model.embed_tokens.weight', shape: [v, h], transposed: false, slot: { kind: 'embedTokens' } }];
  if (!config.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [v, h], transposed: false, slot: { kind: 'lmHead' } });
  specs.push({ name: 'model.norm.weight', shape: [h], transposed: false, slot: { kind: 'finalNorm' } });
  for (let layer = 0; layer < config.numLayers; layer++) {
    const norm = (name: string, norm: 'inputNorm' | 'postAttentionNorm' | 'qNorm' | 'kNorm', n: number) =>
      specs.push({ name: `model.layers.${layer}.${name}.weight`, shape: [n], transposed: false, slot: { kind: 'norm', layer, norm } });
    norm('input_layernorm', 'inputNorm', h);
    norm('post_attention_layernorm', 'postAttentionNorm', h);
    if (config.qkNorm) {
      norm('self_attn.q_norm', 'qNorm', headDim);
      norm('self_attn.k_norm', 'kNorm', headDim);
    }
    for (const projection of PROJECTIONS) {
      const path = projectionPath(layer, projection);
      const shape = projectionShape(config, projection);
      specs.push({ name: `${path}.weight`, shape, transposed: true, slot: { kind: 'projection', layer, projection, part: 'weight' } });
      if (hasBias(config, projection)) specs.push({ name: `${path}.bias`, shape: [shape[0]], transposed: false, slot: { kind: 'projection', layer, projection, part: 'bias' } });
    }
  }
  return specs;
}

/** The tensor a spec names, as the model holds it. */
export function getParameter(weights: ModelWeights, spec: ParameterSpec): tf.Tensor {
  const s = spec.slot;
  switch (s.kind) {
    case 'embedTokens':
    case 'lmHead':
    case 'finalNorm':
      return weights[s.kind];
    case 'norm':
      return weights.layers[s.layer][s.norm]!;
    case 'projection': {
      const linear = weights.layers[s.layer].proj[s.projection];
      return s.part === 'weight' ? linear.weightT : linear.bias!;
    }
  }
}

/** Puts a tensor (in the model's layout) where a spec says; layers and projections are created as needed. */
export function setParameter(weights: ModelWeights, spec: ParameterSpec, tensor: tf.Tensor): void {
  const s = spec.slot;
  if (s.kind === 'embedTokens' || s.kind === 'lmHead' || s.kind === 'finalNorm') {
    (weights as unknown as Record<string, tf.Tensor>)[s.kind] = tensor;
    return;
  }
  const layer = (weights.layers[s.layer] ??= { proj: {} as Record<ProjectionName, Linear> } as DecoderLayer);
  if (s.kind === 'norm') {
    layer[s.norm] = tensor as tf.Tensor1D;
    return;
  }
  const path = projectionPath(s.layer, s.projection);
  const linear = (layer.proj[s.projection] ??= { inFeatures: 0, outFeatures: 0, path } as Linear);
  if (s.part === 'bias') linear.bias = tensor as tf.Tensor1D;
  else {
    linear.weightT = tensor as tf.Tensor2D;
    [linear.outFeatures, linear.inFeatures] = spec.shape;
  }
}

/** The projections of a model, as LoRA targets them: every layer's, restricted to `modules`. */
export function projectionsOf(weights: ModelWeights, config: ModelConfig, modules: readonly string[]): Linear[] {
  return parameterSpecs(config).flatMap(({ slot }) =>
    slot.kind === 'projection' && slot.part === 'weight' && modules.includes(slot.projection) ? [weights.layers[slot.layer].proj[slot.projection]] : [],
  );
}
