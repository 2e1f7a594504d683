// LoRA adapters as PEFT defines them: y = W x + scale · B(A(dropout(x))), scale = alpha/r (alpha/√r
// with rsLoRA), A Kaiming-uniform(a=√5) and B zero at init. Loaded from and saved to PEFT's own
// format (adapter_config.json + adapter_model.safetensors) so adapters move between PEFT and here.
import { peftBaseModelName, writePeftAdapter } from '../../core/llm/peft-adapter.js';
import { tf } from './tf.js';
import { readFloat32 } from './read-back.js';
import { Rng } from '../../core/rng.js';
import { readSafetensors } from '../../core/llm/safetensors.js';
import { PEFT_PREFIX, loraScale, readPeftAdapterConfig } from '../../core/llm/peft-config.js';
import type { LoraAdapter, LoraConfig, LoraOptions, LoraSnapshot, LoraState } from './lora-types.js';
import { CausalLM, PROJECTIONS, type Linear, type ProjectionName } from './model.js';
import { projectionsOf } from './parameters.js';

export type { LoraAdapter, LoraConfig, LoraOptions, LoraSnapshot, LoraState } from './lora-types.js';

export { loraScale, peftBaseModelName, writePeftAdapter };

function validate(config: LoraConfig): void {
  if (!(Number.isInteger(config.r) && config.r > 0)) throw new Error(`LoRA: r must be a positive integer, got ${config.r}`);
  if (!(config.alpha > 0)) throw new Error(`LoRA: alpha must be positive, got ${config.alpha}`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${config.dropout}`);
  const unknown = config.targetModules.filter((m) => !(PROJECTIONS as readonly string[]).includes(m));
  if (unknown.length || config.targetModules.length === 0) {
    throw new Error(`LoRA: target modules must be among ${PROJECTIONS.join(', ')}; got ${JSON.stringify(config.targetModules)}`);
  }
}


/** Attach fresh adapters (PEFT's init). Replaces any adapter already attached. */
export function attachLora(model: CausalLM, options: LoraOptions): LoraState {
  const config: LoraConfig = { dropout: 0, useRslora: false, seed: 0, ...options };
  validate(config);
  detachLora(model);
  const rng = new Rng(config.seed);
  const adapters = new Map<string, LoraAdapter>();
  for (const linear of projectionsOf(model.weights, model.config, config.targetModules)) {
    // kaiming_uniform_(a=√5) on [r, in]: bound = gain·√(3/fan_in) with gain = √(2/(1+5)) → 1/√in.
    const bound = 1 / Math.sqrt(linear.inFeatures);
    const a = new Float32Array(config.r * linear.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    // tf.variable keeps its own reference to the initial value, so the temporaries are freed here.
    const initialA = tf.tensor2d(a, [config.r, linear.inFeatures]);
    const initialB = tf.zeros([linear.outFeatures, config.r]);
    adapters.set(linear.path, { A: tf.variable(initialA, true), B: tf.variable(initialB, true) });
    tf.dispose([initialA, initialB]);
  }
  const state: LoraState = { config: { ...config, targetModules: [...config.targetModules] }, scale: loraScale(config), adapters, merged: false };
  model.lora = state;
  return state;
}

/**
 * A model on the same base weight tensors with its own copy of the LoRA adapters (rollout engines,
 * evaluation): loading weights into one, or folding its adapter in (withLoraMerged swaps its own
 * projection references), leaves the other alone. Memory: the adapters only. Free it with
 * detachLora(fork), never dispose() (the base tensors are shared). Base weights must not be trained
 * in place meanwhile (trainBaseWeights): the fork would see them change.
 */
export function forkWithOwnAdapters(model: CausalLM): CausalLM {
  if (model.lora?.merged) throw new Error('forkWithOwnAdapters: the adapter is merged into the weights; unmerge it first');
  const w = model.weights;
  const weights = {
    ...w,
    layers: w.layers.map((layer) => ({ ...layer, proj: Object.fromEntries(PROJECTIONS.map((p) => [p, { ...layer.proj[p] }])) as Record<ProjectionName, Linear> })),
  };
  const fork = new CausalLM(model.config, weights, { dir: model.dir });
  if (model.lora) {
    const adapters = new Map<string, LoraAdapter>();
    for (const [path, a] of model.lora.adapters) adapters.set(path, { A: tf.variable(a.A, false), B: tf.variable(a.B, false) });
    fork.lora = { config: { ...model.lora.config, targetModules: [...model.lora.config.targetModules] }, scale: model.lora.scale, adapters, merged: false };
  }
  return fork;
}

/** Remove adapters (unmerging first if merged) and free them. */
export function detachLora(model: CausalLM): void {
  if (!model.lora) return;
  if (model.lora.merged) unmergeLora(model);
  for (const a of model.lora.adapters.values()) {
    a.A.dispose();
    a.B.dispose();
  }
  model.lora = undefined;
}

function requireLora(model: CausalLM, where: string): LoraState {
  if (!model.lora) throw new Error(`${where}: the model has no LoRA adapter attached`);
  return model.lora;
}

/** Fold scale·B·A into the base weights (for fast inference / export). */
export function mergeLora(model: CausalLM): void {
  const lora = requireLora(model, 'mergeLora');
  if (lora.merged) return;
  foldInto(model, lora, 1);
  lora.merged = true;
}

export function unmergeLora(model: CausalLM): void {
  const lora = requireLora(model, 'unmergeLora');
  if (!lora.merged) return;
  foldInto(model, lora, -1);
  lora.merged = false;
}

function foldInto(model: CausalLM, lora: LoraState, sign: 1 | -1): void {
  for (const layer of model.weights.layers) {
    for (const p of PROJECTIONS) {
      const linear = layer.proj[p];
      const adapter = lora.adapters.get(linear.path);
      if (!adapter) continue;
      const old = linear.weightT;
      // Wᵀ ± scale·(B·A)ᵀ = Wᵀ ± scale·Aᵀ·Bᵀ
      linear.weightT = tf.tidy(() => tf.add(old, tf.mul(tf.matMul(adapter.A, adapter.B, true, true), sign * lora.scale))) as tf.Tensor2D;
      old.dispose();
    }
  }
}

/**
 * Runs `fn` while the model computes with scale·B·A folded into copies of the base weights (for export),
 * then puts the original tensors back. Unlike merge-then-unmerge this leaves the base weights bit-exact,
 * so a model still in use is not disturbed; it holds a second copy of the adapted projections meanwhile.
 * `fn` may be asynchronous (an export reads the weights back asynchronously): the originals come back
 * once it has settled, so hold the model's lock around the whole call.
 */
export async function withLoraMerged<T>(model: CausalLM, fn: () => T | Promise<T>): Promise<T> {
  const lora = requireLora(model, 'withLoraMerged');
  if (lora.merged) return await fn();
  const originals: { linear: Linear; weightT: tf.Tensor2D }[] = [];
  try {
    for (const layer of model.weights.layers) {
      for (const p of PROJECTIONS) {
        const linear = layer.proj[p];
        const adapter = lora.adapters.get(linear.path);
        if (!adapter) continue;
        originals.push({ linear, weightT: linear.weightT });
        linear.weightT = tf.tidy(() => tf.add(linear.weightT, tf.mul(tf.matMul(adapter.A, adapter.B, true, true), lora.scale))) as tf.Tensor2D;
      }
    }
    lora.merged = true;
    return await fn();
  } finally {
    for (const { linear, weightT } of originals) {
      linear.weightT.dispose();
      linear.weightT = weightT;
    }
    lora.merged = false;
  }
}

/**
 * The adapter weights by PEFT tensor name, read synchronously: only for backends that can (cpu, wasm)
 * and tests. The training, checkpoint and export paths use loraSnapshotAsync (WebGPU has no sync read).
 */
export function loraSnapshot(model: CausalLM): LoraSnapshot {
  const lora = requireLora(model, 'loraSnapshot');
  const out: LoraSnapshot = {};
  for (const [path, a] of lora.adapters) {
    out[`${PEFT_PREFIX}${path}.lora_A.weight`] = { shape: a.A.shape, data: a.A.dataSync() as Float32Array };
    out[`${PEFT_PREFIX}${path}.lora_B.weight`] = { shape: a.B.shape, data: a.B.dataSync() as Float32Array };
  }
  return out;
}

/**
 * The adapter weights by PEFT tensor name (to ship to a generator worker, or checkpoint), read back
 * asynchronously (WebGPU in Node has no synchronous read). The values are those at the call: the reads
 * are issued before anything is awaited, so a step that updates the adapter meanwhile does not leak in.
 */
export async function loraSnapshotAsync(model: CausalLM): Promise<LoraSnapshot> {
  const lora = requireLora(model, 'loraSnapshotAsync');
  const entries = [...lora.adapters].flatMap(([path, a]) => [
    { name: `${PEFT_PREFIX}${path}.lora_A.weight`, tensor: a.A },
    { name: `${PEFT_PREFIX}${path}.lora_B.weight`, tensor: a.B },
  ]);
  const shapes = entries.map((e) => e.tensor.shape.slice());
  const values = await readFloat32(entries.map((e) => e.tensor), 'loraSnapshotAsync');
  return Object.fromEntries(entries.map((e, i) => [e.name, { shape: shapes[i], data: values[i] }]));
}

/** Assign adapter weights from a snapshot (every adapter must be present with its shape). */
export function loadLoraSnapshot(model: CausalLM, snapshot: LoraSnapshot, where = 'LoRA snapshot'): void {
  const lora = requireLora(model, 'loadLoraSnapshot');
  if (lora.merged) throw new Error('loadLoraSnapshot: unmerge the adapter before loading new weights');
  for (const [path, a] of lora.adapters) {
    for (const [which, variable] of [['lora_A', a.A], ['lora_B', a.B]] as const) {
      const name = `${PEFT_PREFIX}${path}.${which}.weight`;
      const entry = snapshot[name];
      if (!entry) throw new Error(`${where}: missing tensor "${name}"`);
      if (entry.shape.length !== 2 || entry.shape[0] !== variable.shape[0] || entry.shape[1] !== variable.shape[1]) {
        throw new Error(`${where}: tensor "${name}" has shape [${entry.shape}], expected [${variable.shape}]`);
      }
      variable.assign(tf.tensor2d(entry.data, variable.shape as [number, number]));
    }
  }
}

/** Load a PEFT LoRA adapter folder into the model (attaching adapters as its config says). */
export function loadPeftAdapter(model: CausalLM, dir: string): LoraState {
  const adapter = readPeftAdapterConfig(dir);
  attachLora(model, {
    r: adapter.r,
    alpha: adapter.alpha,
    dropout: adapter.dropout,
    targetModules: adapter.targetModules,
    useRslora: adapter.useRslora,
    seed: 0,
  });
  loadLoraSnapshot(model, Object.fromEntries(readSafetensors(adapter.weightsPath)), adapter.weightsPath);
  return model.lora!;
}

/** Save the adapter in PEFT's format: adapter_config.json + adapter_model.safetensors (float32). */
export async function savePeftAdapter(model: CausalLM, dir: string, options: { baseModelNameOrPath?: string } = {}): Promise<void> {
  const lora = requireLora(model, 'savePeftAdapter');
  writePeftAdapter(dir, await loraSnapshotAsync(model), lora.config, options.baseModelNameOrPath ?? peftBaseModelName(model.dir));
}

