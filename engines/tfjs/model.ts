// A decoder-only transformer (Llama / Mistral / Qwen2 / Qwen3) in TensorFlow.js that computes what
// Hugging Face transformers computes, in float32. Base weights are plain tensors (never variables) and
// only attached LoRA matrices are trainable, unless `trainBaseWeights()` turns every base weight into a
// variable for full training (the from-scratch SFT of the embedded model).
import { tf } from './tf.js';
import { Rng, type RngState } from '../../core/rng.js';
import type { ModelConfig } from '../../core/llm/config.js';
import { copySlotsInPlace, decodeUpdate, inPlaceWritesSupported, prefillUpdate, replaceStores, type AttendOver, type KVCache, type KVUpdate } from './kv-cache.js';
import type { LoraState, LoraAdapter } from './lora-types.js';
import type { ModelHandle } from '../../core/engine/model-handle.js';
import { applyRope, ropeInverseFrequencies, ropeTables } from './rope.js';
import { chunkedTokenLogprobs, type TokenLogprobOptions } from './logprobs.js';
import { checkpointed } from './checkpoint.js';
import { trainableEmbeddingLookup } from './embedding.js';
import { frozenMatMul, matMul, swapLastAxes, unembed } from './matmul.js';
import { getParameter, parameterSpecs, setParameter, type DecoderLayer, type Linear, type ModelWeights } from './parameters.js';
import { PROJECTIONS, projectionPath, type ProjectionName } from '../../core/llm/projections.js';

export type { ModelConfig } from '../../core/llm/config.js';
export type { KVCache } from './kv-cache.js';

export { PROJECTIONS, projectionPath, type ProjectionName } from '../../core/llm/projections.js';
export type { DecoderLayer, Linear, ModelWeights } from './parameters.js';

export interface HiddenOptions {
  training?: boolean;
  checkpointLayers?: boolean;
}

/** LoRA matrices standing in for the model's own (so checkpointing can pass them as gradient inputs). */
type AdapterTensors = Partial<Record<ProjectionName, { A: tf.Tensor; B: tf.Tensor }>>;

/** What one pass over the layers needs besides the hidden states. */
interface PassContext {
  batch: number;
  length: number;
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  /** Additive attention mask [B, 1, 1, T, S]. */
  mask: tf.Tensor;
  training: boolean;
  /** Seeds for LoRA dropout, fixed per pass so a recomputed (checkpointed) layer draws the same masks. */
  dropoutSeed: number;
  /**
   * Given this layer's new keys/values [B, kvH, T, D], return what to attend over: keys [B, kvH, S, D]
   * (or already transposed, [B, kvH, D, S], with `keysTransposed`) and values [B, kvH, S, D].
   */
  keyValues?: (layer: number, keys: tf.Tensor4D, values: tf.Tensor4D) => AttendOver;
}


const MASKED = -1e9;
export class CausalLM implements ModelHandle {
  /** The model engine that holds it (the `model` edge's ModelHandle). */
  readonly engine = 'tfjs';
  readonly config: ModelConfig;
  readonly dir?: string;
  /** Weights; internal to core/llm (lora.ts swaps projection weights when merging). */
  readonly weights: ModelWeights;
  lora?: LoraState;
  private adaptersDisabled = false;
  /** Set by trainBaseWeights(): base weights are variables and gradients flow into them. */
  private baseWeightsTrainable = false;
  private readonly inverseFrequencies: tf.Tensor1D;
  /** Seeds LoRA dropout in training passes; save and restore its state with a checkpoint when dropout > 0. */
  readonly dropoutRng: Rng;

  constructor(config: ModelConfig, weights: ModelWeights, options: { dir?: string; seed?: number } = {}) {
    this.config = config;
    this.weights = weights;
    this.dir = options.dir;
    this.inverseFrequencies = tf.tensor1d(ropeInverseFrequencies(config));
    this.dropoutRng = new Rng(options.seed ?? 0);
  }

  /** The LoRA-dropout generator's state, saved in checkpoints so a resumed run draws the same masks. */
  dropoutRngState(): RngState {
    return this.dropoutRng.state();
  }

  setDropoutRngState(state: RngState): void {
    this.dropoutRng.setState(state);
  }

  // ---------------------------------------------------------------- full-sequence passes

  forward(ids: tf.Tensor2D, attentionMask?: tf.Tensor2D, positions?: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const h = this.hidden(ids, attentionMask, positions);
      const [b, t, hidden] = h.shape;
      const logits = unembed(h.reshape([b * t, hidden]), this.weights.lmHead);
      return logits.reshape([b, t, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  hidden(ids: tf.Tensor2D, attentionMask?: tf.Tensor2D, positions?: tf.Tensor2D, options: HiddenOptions = {}): tf.Tensor3D {
    this.checkIds(ids, 'hidden');
    return tf.tidy(() => {
      const ctx = this.passContext(ids, attentionMask, positions, options.training ?? false);
      return this.runLayers(ids, ctx, options.checkpointLayers ?? false);
    });
  }

  /**
   * Hidden states of many continuations of a few shared prompts, each prompt computed once (GRPO's G
   * completions per prompt): the prompts pass through the layers first, and every continuation row then
   * attends over its prompt's keys/values plus its own tokens. Gradients flow into the prompt pass too, so
   * this equals `hidden` over the concatenated [prompt | continuation] rows, at a fraction of the prompt cost.
   *
   * `prompts` [G, P] is left-padded (`promptMask` marks real tokens); `ids` [B, C] holds the continuation
   * tokens, right-padded (`mask`); `group[b]` is row b's prompt. Returns [B, 1 + C, H]: column 0 is the
   * prompt's last hidden state (it predicts the first continuation token), column 1 + j the state after
   * continuation token j. Returns undefined for sliding-window models (use `hidden`); no layer checkpointing.
   */
  sharedPrefixHidden(
    prompts: tf.Tensor2D,
    promptMask: tf.Tensor2D,
    ids: tf.Tensor2D,
    mask: tf.Tensor2D,
    group: number[],
    options: { training?: boolean } = {},
  ): tf.Tensor3D | undefined {
    this.checkIds(prompts, 'sharedPrefixHidden');
    this.checkIds(ids, 'sharedPrefixHidden');
    if (this.config.slidingWindow) return undefined;
    const [g, p] = prompts.shape;
    const [b, c] = ids.shape;
    if (group.length !== b || group.some((x) => !(Number.isInteger(x) && x >= 0 && x < g))) {
      throw new Error(`sharedPrefixHidden: group must give each of the ${b} rows a prompt index in [0, ${g})`);
    }
    return tf.tidy(() => {
      const training = options.training ?? false;
      // Prompt pass, keeping each layer's keys/values (after RoPE) for the continuation pass.
      const promptKeys: tf.Tensor4D[] = [];
      const promptValues: tf.Tensor4D[] = [];
      const capture = (layer: number, k: tf.Tensor4D, v: tf.Tensor4D): AttendOver => {
        promptKeys[layer] = k;
        promptValues[layer] = v;
        return { keys: k, values: v };
      };
      const promptHidden = this.runLayers(prompts, this.passContext(prompts, promptMask, undefined, training, capture), false);
      // Left-padded: the last column is every prompt's last real token. A one-hot matmul picks each row's
      // prompt (a gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks).
      const picks = new Float32Array(b * g);
      group.forEach((prompt, row) => (picks[row * g + prompt] = 1));
      const pick = tf.tensor2d(picks, [b, g]); // [B, G] (tf.oneHot refuses a depth of 1: one prompt)
      const last = tf.slice(promptHidden, [0, p - 1, 0], [g, 1, this.config.hiddenSize]).reshape([g, this.config.hiddenSize]) as tf.Tensor2D;
      const first = matMul(pick, last).reshape([b, 1, this.config.hiddenSize]);
      if (c === 0) return first as tf.Tensor3D;

      const promptLengths = tf.sum(promptMask.toFloat(), 1); // [G]
      const rowStart = matMul(pick, promptLengths.reshape([g, 1])); // [B, 1]
      const positions = tf.add(rowStart, tf.range(0, c, 1, 'float32').reshape([1, c])) as tf.Tensor2D;
      const { cos, sin } = ropeTables(positions, this.inverseFrequencies);
      // allowed(b, i, ·) = [the row's real prompt tokens | continuation tokens j ≤ i that are not padding]
      const promptAllowed = matMul(pick, promptMask.toFloat()).reshape([b, 1, 1, 1, p]);
      const causal = tf.linalg.bandPart(tf.ones([c, c]), -1, 0).reshape([1, 1, 1, c, c]);
      const ownAllowed = tf.mul(causal, mask.toFloat().reshape([b, 1, 1, 1, c]));
      // Broadcast at rank 3: tfjs-webgpu tiles rank ≥ 5 on the CPU through a synchronous read, which Node lacks.
      const promptRows = tf.broadcastTo(promptAllowed.reshape([b, 1, p]), [b, c, p]).reshape([b, 1, 1, c, p]);
      const allowed = tf.concat([promptRows, ownAllowed], 4);
      const { numKvHeads, headDim } = this.config;
      const perRow = (store: tf.Tensor4D) => matMul(pick, store.reshape([g, numKvHeads * p * headDim])).reshape([b, numKvHeads, p, headDim]);
      const attendOver = (layer: number, k: tf.Tensor4D, v: tf.Tensor4D): AttendOver => ({
        keys: tf.concat([perRow(promptKeys[layer]), k], 2) as tf.Tensor4D,
        values: tf.concat([perRow(promptValues[layer]), v], 2) as tf.Tensor4D,
      });
      const ctx: PassContext = {
        batch: b, length: c, cos, sin, mask: tf.mul(tf.sub(1, allowed), MASKED),
        training, dropoutSeed: training ? this.dropoutRng.nextUint32() : 0, keyValues: attendOver,
      };
      const rest = this.runLayers(ids, ctx, false);
      return tf.concat([first, rest], 1) as tf.Tensor3D;
    });
  }

  tokenLogprobs(hidden: tf.Tensor3D, targets: tf.Tensor2D, options: TokenLogprobOptions = {}): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D } {
    const [b, t, h] = hidden.shape;
    if (targets.shape[0] !== b || targets.shape[1] !== t) {
      throw new Error(`tokenLogprobs: targets shape [${targets.shape}] does not match hidden [${b}, ${t}, ·]`);
    }
    const flat = hidden.reshape([b * t, h]) as tf.Tensor2D;
    const flatTargets = targets.reshape([b * t]).toInt() as tf.Tensor1D;
    const { logprobs, entropy } = chunkedTokenLogprobs(flat, this.weights.lmHead, flatTargets, {
      ...options,
      trainUnembedding: this.baseWeightsTrainable,
    });
    const out = {
      logprobs: logprobs.reshape([b, t]) as tf.Tensor2D,
      entropy: entropy ? (entropy.reshape([b, t]) as tf.Tensor2D) : undefined,
    };
    logprobs.dispose();
    entropy?.dispose();
    flatTargets.dispose();
    return out;
  }

  // ---------------------------------------------------------------- KV cache

  /**
   * A cache of `slots` sequences up to `maxLength` tokens. Written in place where the backend allows it;
   * `inPlace: false` forces the copying writes the GPU backends use (tests run both).
   */
  newCache(slots: number, maxLength: number, options: { inPlace?: boolean } = {}): KVCache {
    if (!(slots > 0 && maxLength > 0)) throw new Error(`newCache: slots (${slots}) and maxLength (${maxLength}) must be positive`);
    const supported = inPlaceWritesSupported();
    const inPlace = options.inPlace ?? supported;
    if (inPlace && !supported) throw new Error(`newCache: the ${tf.getBackend()} backend cannot write a cache in place`);
    const { numLayers, numKvHeads, headDim } = this.config;
    return {
      slots,
      maxLength,
      keys: Array.from({ length: numLayers }, () => tf.zeros([slots, numKvHeads, headDim, maxLength]) as tf.Tensor4D),
      values: Array.from({ length: numLayers }, () => tf.zeros([slots, numKvHeads, maxLength, headDim]) as tf.Tensor4D),
      lengths: new Array(slots).fill(0),
      inPlace,
      disposed: false,
    };
  }

  prefill(cache: KVCache, slot: number, ids: number[]): tf.Tensor1D {
    return tf.tidy(() => this.prefillMany(cache, [slot], [ids]).reshape([this.config.vocabSize]) as tf.Tensor1D);
  }

  prefillMany(cache: KVCache, slots: number[], prompts: number[][]): tf.Tensor2D {
    this.checkCache(cache);
    if (slots.length !== prompts.length || slots.length === 0) throw new Error(`prefillMany: ${slots.length} slots for ${prompts.length} prompts`);
    if (new Set(slots).size !== slots.length) throw new Error(`prefillMany: slots repeat (${slots})`);
    const lengths = prompts.map((p) => p.length);
    const longest = Math.max(...lengths);
    slots.forEach((s, i) => {
      this.checkSlot(cache, s);
      if (lengths[i] === 0) throw new Error(`prefill: slot ${s} got an empty prompt`);
      if (lengths[i] > cache.maxLength) throw new Error(`prefill: prompt of ${lengths[i]} tokens does not fit slot ${s} (maxLength ${cache.maxLength})`);
    });
    const n = slots.length;
    // Right-padded: real tokens keep positions 0..len−1, and the cache columns past len are never read.
    const idsData = new Int32Array(n * longest);
    const maskData = new Int32Array(n * longest);
    prompts.forEach((p, i) => p.forEach((tok, j) => ((idsData[i * longest + j] = tok), (maskData[i * longest + j] = 1))));
    let writes: KVUpdate | undefined;
    const logits = tf.tidy(() => {
      const ids = tf.tensor2d(idsData, [n, longest], 'int32');
      const mask = tf.tensor2d(maskData, [n, longest], 'int32');
      writes = prefillUpdate(cache, slots, lengths, longest);
      const h = this.runLayers(ids, this.passContext(ids, mask, undefined, false, (layer, k, v) => writes!.update(layer, k, v)), false);
      const last = tf.tensor2d(lengths.map((len, i) => [i, len - 1]), [n, 2], 'int32');
      const lastHidden = tf.gatherND(h, last) as tf.Tensor2D;
      return unembed(lastHidden, this.weights.lmHead);
    });
    writes!.commit();
    slots.forEach((s, i) => (cache.lengths[s] = lengths[i]));
    return logits;
  }

  decode(cache: KVCache, slots: number[], tokens: number[]): tf.Tensor2D {
    this.checkCache(cache);
    if (slots.length !== tokens.length || slots.length === 0) throw new Error(`decode: ${slots.length} slots for ${tokens.length} tokens`);
    if (new Set(slots).size !== slots.length) throw new Error(`decode: slots repeat (${slots})`);
    const positions = slots.map((s) => {
      this.checkSlot(cache, s);
      const len = cache.lengths[s];
      if (len === 0) throw new Error(`decode: slot ${s} is empty; prefill it first`);
      if (len >= cache.maxLength) throw new Error(`decode: slot ${s} is full (${len} of maxLength ${cache.maxLength} tokens)`);
      return len;
    });
    const logits = cache.inPlace ? this.decodeInPlace(cache, slots, tokens, positions) : this.decodeByCopy(cache, slots, tokens, positions);
    slots.forEach((s) => cache.lengths[s]++);
    return logits;
  }

  /**
   * Every slot runs, in slot order, so attention reads the cache as it lies: no gather of the requested
   * slots (on wasm a gather of whole cache rows cost several times the step). Rows of slots not asked
   * for are computed and dropped; only the requested slots' keys and values are written.
   */
  private decodeInPlace(cache: KVCache, slots: number[], tokens: number[], positions: number[]): tf.Tensor2D {
    const all = Array.from({ length: cache.slots }, (_, s) => s);
    const rowTokens = new Array<number>(cache.slots).fill(0);
    const rowPositions = cache.lengths.map((len) => Math.min(len, cache.maxLength - 1));
    const writes = new Array<number>(cache.slots).fill(0);
    slots.forEach((s, i) => ((rowTokens[s] = tokens[i]), (rowPositions[s] = positions[i]), (writes[s] = 1)));
    const allSlotsInOrder = slots.length === cache.slots && slots.every((s, i) => s === i);
    return tf.tidy(() => {
      const update = decodeUpdate(cache, { slots: all, positions: rowPositions, writes, span: cache.maxLength });
      const keyValues = (layer: number, k: tf.Tensor4D, v: tf.Tensor4D) => update.update(layer, k, v);
      const h = this.runLayers(tf.tensor2d(rowTokens, [cache.slots, 1], 'int32'), this.decodeContext(rowPositions, cache.maxLength, keyValues), false);
      const rows = h.reshape([cache.slots, this.config.hiddenSize]) as tf.Tensor2D;
      return unembed(allSlotsInOrder ? rows : (tf.gather(rows, tf.tensor1d(slots, 'int32')) as tf.Tensor2D), this.weights.lmHead);
    });
  }

  /** The GPU backends' decode: each write makes a new cache tensor; attention reads the requested slots' rows. */
  private decodeByCopy(cache: KVCache, slots: number[], tokens: number[], positions: number[]): tf.Tensor2D {
    const n = slots.length;
    // Cache columns to attend over: those any of these slots has filled, or — when that is most of the
    // cache — all of them, masked, since copying out a column range costs about as much as attending to it.
    const filled = Math.max(...positions) + 1;
    const span = filled * 2 > cache.maxLength ? cache.maxLength : filled;
    let update: KVUpdate | undefined;
    const logits = tf.tidy(() => {
      update = decodeUpdate(cache, { slots, positions, span });
      const keyValues = (layer: number, k: tf.Tensor4D, v: tf.Tensor4D) => update!.update(layer, k, v);
      const h = this.runLayers(tf.tensor2d(tokens, [n, 1], 'int32'), this.decodeContext(positions, span, keyValues), false);
      return unembed(h.reshape([n, this.config.hiddenSize]) as tf.Tensor2D, this.weights.lmHead);
    });
    update!.commit();
    return logits;
  }

  /** One token per row at `positions`, attending over cache columns [0, span) up to its own position. */
  private decodeContext(positions: number[], span: number, keyValues: PassContext['keyValues']): PassContext {
    const n = positions.length;
    const pos = tf.tensor2d(positions, [n, 1], 'float32');
    const { cos, sin } = ropeTables(pos, this.inverseFrequencies);
    const column = tf.range(0, span, 1, 'float32').reshape([1, span]);
    const window = this.config.slidingWindow;
    const visible = window ? tf.logicalAnd(tf.lessEqual(column, pos), tf.greater(column, tf.sub(pos, window))) : tf.lessEqual(column, pos);
    const allowed = visible.toFloat().reshape([n, 1, 1, 1, span]);
    return { batch: n, length: 1, cos, sin, mask: tf.mul(tf.sub(1, allowed), MASKED), training: false, dropoutSeed: 0, keyValues };
  }

  copySlots(cache: KVCache, from: number[], to: number[]): void {
    this.checkCache(cache);
    if (from.length !== to.length) throw new Error(`copySlots: ${from.length} sources for ${to.length} targets`);
    [...from, ...to].forEach((s) => this.checkSlot(cache, s));
    if (from.length === 0) return;
    if (cache.inPlace) copySlotsInPlace(cache, from, to);
    else {
      const [newKeys, newValues] = tf.tidy(() => {
        const sources = tf.tensor1d(from, 'int32');
        const targets = tf.tensor2d(to, [to.length, 1], 'int32');
        const copy = (store: tf.Tensor4D) => tf.keep(tf.tensorScatterUpdate(store, targets, tf.gather(store, sources))) as tf.Tensor4D;
        return [cache.keys.map(copy), cache.values.map(copy)];
      });
      replaceStores(cache, newKeys, newValues);
    }
    to.forEach((t, i) => (cache.lengths[t] = cache.lengths[from[i]]));
  }

  release(cache: KVCache, slot: number): void {
    this.checkCache(cache);
    this.checkSlot(cache, slot);
    cache.lengths[slot] = 0; // the stale columns are overwritten by the next prefill and never read before
  }

  disposeCache(cache: KVCache): void {
    if (cache.disposed) return;
    cache.keys.forEach((t) => t.dispose());
    cache.values.forEach((t) => t.dispose());
    cache.disposed = true;
  }

  // ---------------------------------------------------------------- LoRA

  /**
   * Full training: every base weight becomes a trainable variable (tied embeddings stay one variable)
   * and the projections and unembedding pass gradients to their weights. trainableVariables() then
   * lists the base weights (plus any LoRA matrices). For training from scratch; LoRA needs none of this.
   */
  trainBaseWeights(): void {
    if (this.baseWeightsTrainable) return;
    if (this.lora?.merged) throw new Error('trainBaseWeights: unmerge the LoRA adapter first');
    const toVariable = <T extends tf.Tensor>(t: T): T => {
      const v = tf.variable(t, true);
      t.dispose();
      return v as unknown as T;
    };
    const w = this.weights;
    const tied = w.lmHead === w.embedTokens;
    for (const spec of parameterSpecs(this.config)) setParameter(w, spec, toVariable(getParameter(w, spec)));
    if (tied) w.lmHead = w.embedTokens;
    this.baseWeightsTrainable = true;
  }

  trainableVariables(): tf.Variable[] {
    const lora = this.lora ? [...this.lora.adapters.values()].flatMap((a) => [a.A, a.B]) : [];
    if (!this.baseWeightsTrainable) return lora;
    return [...(this.baseWeightTensors() as tf.Variable[]), ...lora];
  }

  withAdaptersDisabled<T>(fn: () => T): T {
    const before = this.adaptersDisabled;
    this.adaptersDisabled = true;
    try {
      return fn();
    } finally {
      this.adaptersDisabled = before;
    }
  }

  /** Every base weight tensor once (a tied embedding is one tensor), LoRA excluded, in the parameter list's order. */
  baseWeightTensors(): tf.Tensor[] {
    return parameterSpecs(this.config).map((spec) => getParameter(this.weights, spec));
  }

  dispose(): void {
    tf.dispose(this.baseWeightTensors());
    for (const a of this.lora?.adapters.values() ?? []) tf.dispose([a.A, a.B]);
    this.lora = undefined;
    this.inverseFrequencies.dispose();
  }

  // ---------------------------------------------------------------- internals

  /** Rotary tables and the causal + padding mask for a full pass over a padded batch. */
  private passContext(
    ids: tf.Tensor2D,
    attentionMask: tf.Tensor2D | undefined,
    positions: tf.Tensor2D | undefined,
    training: boolean,
    keyValues?: PassContext['keyValues'],
  ): PassContext {
    const [b, t] = ids.shape;
    if (attentionMask && (attentionMask.shape[0] !== b || attentionMask.shape[1] !== t)) {
      throw new Error(`attentionMask shape [${attentionMask.shape}] does not match ids [${b}, ${t}]`);
    }
    if (positions && (positions.shape[0] !== b || positions.shape[1] !== t)) {
      throw new Error(`positions shape [${positions.shape}] does not match ids [${b}, ${t}]`);
    }
    const maskF = attentionMask ? attentionMask.toFloat() : tf.ones([b, t]);
    // Positions count real tokens (cumsum − 1), so left padding does not shift them.
    const pos = positions ? positions.toFloat() : tf.maximum(tf.sub(tf.cumsum(maskF, 1), 1), 0);
    const { cos, sin } = ropeTables(pos as tf.Tensor2D, this.inverseFrequencies);
    // allowed(b, i, j) = j ≤ i and token j is not padding
    // … and, with a sliding window w, j > i − w
    const window = this.config.slidingWindow;
    const causal = tf.linalg.bandPart(tf.ones([t, t]), window ? Math.min(window - 1, t) : -1, 0).reshape([1, 1, 1, t, t]);
    const allowed = tf.mul(causal, maskF.reshape([b, 1, 1, 1, t]));
    return {
      batch: b, length: t, cos, sin, mask: tf.mul(tf.sub(1, allowed), MASKED),
      training, dropoutSeed: training ? this.dropoutRng.nextUint32() : 0, keyValues,
    };
  }

  private runLayers(ids: tf.Tensor2D, ctx: PassContext, checkpointLayers: boolean): tf.Tensor3D {
    const { hiddenSize, rmsNormEps } = this.config;
    const flatIds = ids.reshape([ctx.batch * ctx.length]);
    let x = (
      this.baseWeightsTrainable
        ? trainableEmbeddingLookup(this.weights.embedTokens, flatIds.toInt() as tf.Tensor1D)
        : tf.gather(this.weights.embedTokens, flatIds)
    ) as tf.Tensor2D; // [B·T, H]
    for (let i = 0; i < this.weights.layers.length; i++) {
      const adapters = this.activeAdapters(i);
      if (checkpointLayers) {
        const params = adapters.flatMap(([, a]) => [a.A, a.B]);
        x = checkpointed(
          (input, p, [cos, sin, mask]) => {
            const override: AdapterTensors = {};
            adapters.forEach(([name], k) => (override[name] = { A: p[2 * k], B: p[2 * k + 1] }));
            return this.layerForward(input as tf.Tensor2D, i, { ...ctx, cos: cos as tf.Tensor4D, sin: sin as tf.Tensor4D, mask }, override);
          },
          x,
          params,
          [ctx.cos, ctx.sin, ctx.mask],
        ) as tf.Tensor2D;
      } else {
        x = this.layerForward(x, i, ctx);
      }
    }
    return rmsNorm(x, this.weights.finalNorm, rmsNormEps).reshape([ctx.batch, ctx.length, hiddenSize]) as tf.Tensor3D;
  }

  private activeAdapters(layer: number): [ProjectionName, LoraAdapter][] {
    if (!this.lora || this.lora.merged || this.adaptersDisabled) return [];
    const out: [ProjectionName, LoraAdapter][] = [];
    for (const name of PROJECTIONS) {
      const a = this.lora.adapters.get(projectionPath(layer, name));
      if (a) out.push([name, a]);
    }
    return out;
  }

  private layerForward(x: tf.Tensor2D, i: number, ctx: PassContext, override?: AdapterTensors): tf.Tensor2D {
    const layer = this.weights.layers[i];
    const eps = this.config.rmsNormEps;
    const adapters: AdapterTensors = override ?? Object.fromEntries(this.activeAdapters(i));
    const lin = (name: ProjectionName, input: tf.Tensor2D) => this.linear(layer.proj[name], input, adapters[name], ctx, i, name);

    const attnIn = rmsNorm(x, layer.inputNorm, eps) as tf.Tensor2D;
    const h = tf.add(x, lin('o_proj', this.attention(attnIn, layer, ctx, i, lin))) as tf.Tensor2D;
    const mlpIn = rmsNorm(h, layer.postAttentionNorm, eps) as tf.Tensor2D;
    const gate = lin('gate_proj', mlpIn);
    const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), lin('up_proj', mlpIn)) as tf.Tensor2D; // SiLU(gate) · up
    return tf.add(h, lin('down_proj', act)) as tf.Tensor2D;
  }

  private attention(
    x: tf.Tensor2D,
    layer: DecoderLayer,
    ctx: PassContext,
    index: number,
    lin: (name: ProjectionName, input: tf.Tensor2D) => tf.Tensor2D,
  ): tf.Tensor2D {
    const { numHeads, numKvHeads, headDim, rmsNormEps } = this.config;
    const { batch: b, length: t } = ctx;
    const groups = numHeads / numKvHeads;
    let q = lin('q_proj', x).reshape([b, t, numHeads, headDim]) as tf.Tensor4D;
    let k = lin('k_proj', x).reshape([b, t, numKvHeads, headDim]) as tf.Tensor4D;
    const v = lin('v_proj', x).reshape([b, t, numKvHeads, headDim]) as tf.Tensor4D;
    if (layer.qNorm && layer.kNorm) {
      q = rmsNorm(q, layer.qNorm, rmsNormEps) as tf.Tensor4D;
      k = rmsNorm(k, layer.kNorm, rmsNormEps) as tf.Tensor4D;
    }
    q = applyRope(q, ctx.cos, ctx.sin);
    k = applyRope(k, ctx.cos, ctx.sin);
    const own: AttendOver = {
      keys: tf.transpose(k, [0, 2, 1, 3]) as tf.Tensor4D, // [B, kvH, T, D]
      values: tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D,
    };
    const { keys, values, keysTransposed } = ctx.keyValues ? ctx.keyValues(index, own.keys, own.values) : own;
    const s = values.shape[2];
    // GQA without repeating K/V: the query heads sharing a KV head are stacked along the query axis.
    const queries = tf.transpose(q, [0, 2, 1, 3]).reshape([b, numKvHeads, groups * t, headDim]);
    const scores = tf.mul(matMul(queries, keysTransposed ? keys : swapLastAxes(keys)), 1 / Math.sqrt(headDim));
    const masked = tf.add(scores.reshape([b, numKvHeads, groups, t, s]), ctx.mask);
    const probs = tf.softmax(masked, -1).reshape([b, numKvHeads, groups * t, s]);
    const out = matMul(probs, values).reshape([b, numHeads, t, headDim]);
    return tf.transpose(out, [0, 2, 1, 3]).reshape([b * t, numHeads * headDim]) as tf.Tensor2D;
  }

  private linear(
    lin: Linear,
    x: tf.Tensor2D,
    adapter: { A: tf.Tensor; B: tf.Tensor } | undefined,
    ctx: PassContext,
    layer: number,
    name: ProjectionName,
  ): tf.Tensor2D {
    let y: tf.Tensor = this.baseWeightsTrainable ? matMul(x, lin.weightT) : frozenMatMul(x, lin.weightT);
    if (lin.bias) y = tf.add(y, lin.bias);
    if (!adapter || !this.lora) return y as tf.Tensor2D;
    const { dropout } = this.lora.config;
    let input = x;
    if (ctx.training && dropout > 0) {
      const seed = (ctx.dropoutSeed + layer * 7919 + PROJECTIONS.indexOf(name) * 104729) >>> 0;
      input = tf.dropout(x, dropout, undefined, seed) as tf.Tensor2D;
    }
    const down = matMul(input, swapLastAxes(adapter.A)); // [N, r]
    const up = matMul(down, swapLastAxes(adapter.B)); // [N, out]
    return tf.add(y, tf.mul(up, this.lora.scale)) as tf.Tensor2D;
  }

  private checkIds(ids: tf.Tensor, where: string): [number, number] {
    if (ids.rank !== 2) throw new Error(`${where}: ids must be [batch, length], got shape [${ids.shape}]`);
    return [ids.shape[0] as number, ids.shape[1] as number];
  }

  private checkCache(cache: KVCache): void {
    if (cache.disposed) throw new Error('KV cache was disposed');
    if (cache.keys.length !== this.config.numLayers) throw new Error('KV cache belongs to a different model');
  }

  private checkSlot(cache: KVCache, slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= cache.slots) throw new Error(`slot ${slot} out of range (cache has ${cache.slots} slots)`);
  }
}

/** x · rsqrt(mean(x²) + eps) · w over the last axis, in float32. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
}

