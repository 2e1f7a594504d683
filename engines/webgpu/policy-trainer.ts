// The WebGPU policy trainer: GRPO optimiser steps on LoRA adapters with our own kernels (decoder.ts),
// behind the PolicyTrainer interface. A step records each micro-batch (reference pass with adapters off
// when β ≠ 0 and the rows carry no reference log-probs, forward, loss, backward) into one command
// buffer, then the optimiser (global-norm clip + AdamW over the flat adapter vector) into one more;
// the only read-back is the step's metrics at the end. Base weights are frozen on the device in f16 or
// f32 (weights.ts); the KL reference is the same weights with the adapters off.
import type { PolicyTrainer, PolicyWeights, ScoreOptions, StepRows, TrainerState } from '../../core/engine/interfaces.js';
import { rowCount, tokenValuesOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { resolveLossConfig, type TrainStepConfig } from '../../core/grpo/loss-spec.js';
import type { AdamWState } from '../tfjs/grpo/optimizer.js';
import { Recorder, type GpuContext } from './device.js';
import { DecoderPass, RopeInputs, type PassInputs, type PassShape } from './decoder.js';
import { GrpoLossKernel, INPUT_ROW, INPUT_ROWS, lossWeights } from './grpo-loss.js';
import { AdamW } from './kernels/adamw.js';
import { GpuLoraWeights, readBuffers, type GpuModelWeights } from './weights.js';

export interface WebGpuTrainerConfig {
  betas?: [number, number];
  adamEps?: number;
  weightDecay?: number;
  /** Positions and completion slots per row are rounded up to a multiple of this (fewer distinct
   *  shapes, so fewer compiled kernels and a steady buffer pool). Default 16. */
  bucket?: number;
}

/** One row as the packer needs it. */
interface RowView {
  index: number;
  prompt: Int32Array;
  completion: Int32Array;
}

function views(rows: Rows): RowView[] {
  return Array.from({ length: rowCount(rows) }, (_, i) => ({
    index: i,
    prompt: rows.promptIds.subarray(rows.promptOffsets[i], rows.promptOffsets[i + 1]),
    completion: rows.completionIds.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]),
  }));
}

const roundUp = (n: number, m: number) => Math.max(m, Math.ceil(n / m) * m);

/** [prompt | completion | padding] rows of a micro-batch, laid out for a DecoderPass. */
export function packPass(part: RowView[], bucket: number): { shape: PassShape; inputs: PassInputs } {
  for (const r of part) if (r.prompt.length === 0) throw new Error(`row ${r.index}: empty prompt (no token to predict the first completion token from)`);
  const shape: PassShape = {
    batch: part.length,
    tokens: roundUp(Math.max(...part.map((r) => r.prompt.length + r.completion.length)), bucket),
    completion: roundUp(Math.max(...part.map((r) => r.completion.length)), bucket),
  };
  const { batch: B, tokens: T, completion: C } = shape;
  const ids = new Uint32Array(B * T);
  const valid = new Uint32Array(B * T);
  const predicting = new Uint32Array(B * C).fill(B * T);
  const targets = new Uint32Array(B * C);
  part.forEach((r, b) => {
    const P = r.prompt.length;
    ids.set(r.prompt, b * T);
    ids.set(r.completion, b * T + P);
    valid.fill(1, b * T, b * T + P + r.completion.length);
    for (let j = 0; j < r.completion.length; j++) {
      predicting[b * C + j] = b * T + P + j - 1;
      targets[b * C + j] = r.completion[j];
    }
  });
  return { shape, inputs: { ids, valid, predicting, targets } };
}

/** A pass with its loss buffers. */
interface PassEntry {
  pass: DecoderPass;
  tokenIn: GPUBuffer;
  terms: GPUBuffer;
}

export class WebGpuPolicyTrainer implements PolicyTrainer {
  private stepCount = 0;
  numTokensSeen = 0;
  private readonly counted = new WeakSet<object>();
  private readonly passes = new Map<string, PassEntry>();
  private readonly rope: RopeInputs;
  private readonly flatParams: GPUBuffer;
  private readonly flatGrads: GPUBuffer;
  private readonly m: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly norm: GPUBuffer;
  private readonly sums: GPUBuffer;
  private readonly optimizers = new Map<number, AdamW>();
  private readonly betas: [number, number];
  private readonly adamEps: number;
  private readonly weightDecay: number;
  private readonly bucket: number;
  /** Dispatches recorded by the last step (bench). */
  lastStepDispatches = 0;

  constructor(
    private readonly ctx: GpuContext,
    readonly base: GpuModelWeights,
    readonly lora: GpuLoraWeights,
    config: WebGpuTrainerConfig = {},
  ) {
    this.betas = config.betas ?? [0.9, 0.999];
    this.adamEps = config.adamEps ?? 1e-8;
    this.weightDecay = config.weightDecay ?? 0;
    this.bucket = config.bucket ?? 16;
    this.rope = new RopeInputs(ctx, base.config);
    const bytes = lora.size * 4;
    this.flatParams = ctx.storage(bytes);
    this.flatGrads = ctx.storage(bytes);
    this.m = ctx.storage(bytes);
    this.v = ctx.storage(bytes);
    this.norm = ctx.storage(4);
    this.sums = ctx.storage(16 * 4);
    const rec = new Recorder(ctx);
    rec.clear(this.m).clear(this.v);
    rec.submit();
  }

  get version(): number {
    return this.stepCount;
  }

  /** The pass for a shape; at most two shapes are held (micro-batches of one step rarely need more), so
   *  the device memory stays flat across steps. */
  private async passFor(shape: PassShape, slotsRows = 8): Promise<PassEntry> {
    const key = `${shape.batch}x${shape.tokens}x${shape.completion}`;
    let entry = this.passes.get(key);
    if (entry) {
      this.passes.delete(key);
      this.passes.set(key, entry);
      return entry;
    }
    while (this.passes.size >= 2) {
      const [oldKey, old] = this.passes.entries().next().value!;
      this.passes.delete(oldKey);
      await this.ctx.finish();
      old.pass.destroy();
      this.ctx.release(old.tokenIn);
      this.ctx.release(old.terms);
    }
    const pass = await DecoderPass.create(this.ctx, this.base, this.lora, shape, this.rope.for(shape));
    entry = { pass, tokenIn: this.ctx.storage(INPUT_ROWS * pass.NC * 4), terms: this.ctx.storage(slotsRows * pass.NC * 4) };
    this.passes.set(key, entry);
    return entry;
  }

  private parts<T>(list: T[], size: number | undefined): T[][] {
    const n = size ?? list.length;
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`microBatchSize must be a positive integer (got ${n})`);
    const out: T[][] = [];
    for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
    return out;
  }

  async score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    const all = views(rows);
    const out = new Float32Array(rows.completionIds.length);
    if (all.length === 0) return out;
    const parts = this.parts(all, options.microBatchSize);
    const packed = parts.map((part) => packPass(part, this.bucket));
    const totalSlots = packed.reduce((n, p) => n + p.shape.batch * p.shape.completion, 0);
    const result = this.ctx.storage(totalSlots * 4);
    try {
      let offset = 0;
      for (const { shape, inputs } of packed) {
        const { pass } = await this.passFor(shape);
        pass.write(inputs);
        const rec = new Recorder(this.ctx);
        pass.forward(rec, options.adapters === 'on');
        await pass.head(rec, 1 / options.temperature);
        rec.copy(pass.logp, result, pass.NC * 4, 0, offset * 4);
        rec.submit();
        offset += pass.NC;
      }
      const [raw] = await readBuffers(this.ctx, [result]);
      const values = new Float32Array(raw);
      offset = 0;
      parts.forEach((part, p) => {
        const C = packed[p].shape.completion;
        part.forEach((r, b) => out.set(values.subarray(offset + b * C, offset + b * C + r.completion.length), rows.completionOffsets[r.index]));
        offset += packed[p].shape.batch * C;
      });
      return out;
    } finally {
      this.ctx.release(result);
    }
  }

  private optimizer(maxGradNorm: number): Promise<AdamW> | AdamW {
    const existing = this.optimizers.get(maxGradNorm);
    if (existing) return existing;
    return AdamW.create(this.ctx, {
      size: this.lora.size,
      beta1: this.betas[0],
      beta2: this.betas[1],
      eps: this.adamEps,
      weightDecay: this.weightDecay,
      maxGradNorm: maxGradNorm > 0 ? maxGradNorm : Infinity,
    }).then((op) => (this.optimizers.set(maxGradNorm, op), op));
  }

  async step(rows: StepRows, spec: TrainStepConfig): Promise<Record<string, number>> {
    const started = performance.now();
    const unsupported = lossOptionsNotOnDevice(spec);
    if (unsupported.length > 0) throw new Error(`webgpu trainer: ${unsupported.join('; ')} not computed on the device yet (GRPOFLOW_TRAINER=tfjs trains with them)`);
    const cfg = resolveLossConfig({ ...spec, gradientAccumulationSteps: 1 });
    const all = views(rows);
    if (all.length === 0) throw new Error('webgpu trainer: no rows');
    if (spec.importanceSamplingCorrection && !rows.behaviourLogprobs) throw new Error("importance-sampling correction needs the sampler's log-probs (the rows carry none)");
    if (rows.oldLogprobs && rows.oldLogprobs.length !== rows.completionIds.length) {
      throw new Error(`oldLogprobs has ${rows.oldLogprobs.length} values, the rows have ${rows.completionIds.length} completion tokens`);
    }
    const flags = { old: rows.oldLogprobs !== undefined, ref: cfg.beta !== 0, behaviour: spec.importanceSamplingCorrection ?? false };
    const givenReference = flags.ref && rows.refLogprobs !== undefined;
    const scale = 1 / (spec.temperature ?? 1);
    const parts = this.parts(all, spec.microBatchSize);
    const counts = (r: RowView) => (spec.maskTruncatedCompletions && rows.truncated[r.index] ? 0 : r.completion.length);
    const numItemsInBatch = all.reduce((n, r) => n + counts(r), 0);

    const start = new Recorder(this.ctx);
    for (const a of this.lora.adapters.values()) start.clear(a.gradA).clear(a.gradB);
    start.clear(this.sums);
    start.submit();
    let dispatches = 0;
    let names: string[] = [];
    for (const part of parts) {
      const { shape, inputs } = packPass(part, this.bucket);
      const entry = await this.passFor(shape);
      const { pass } = entry;
      const NC = pass.NC;
      const C = shape.completion;
      const tokenIn = new Float32Array(INPUT_ROWS * NC);
      const put = (row: number, perRow: (r: RowView) => ArrayLike<number> | undefined) =>
        part.forEach((r, b) => {
          const values = perRow(r);
          if (values) tokenIn.set(values, row * NC + b * C);
        });
      if (flags.old) put(INPUT_ROW.old, (r) => tokenValuesOf(rows, rows.oldLogprobs!, r.index));
      if (givenReference) put(INPUT_ROW.ref, (r) => tokenValuesOf(rows, rows.refLogprobs!, r.index));
      if (flags.behaviour) put(INPUT_ROW.behaviour, (r) => tokenValuesOf(rows, rows.behaviourLogprobs!, r.index));
      put(INPUT_ROW.advantage, (r) => new Float32Array(r.completion.length).fill(rows.advantages[r.index]));
      const weights = lossWeights(cfg, part.map(counts), C, { microBatches: parts.length, numItemsInBatch });
      tokenIn.set(weights.loss, INPUT_ROW.lossWeight * NC);
      tokenIn.set(weights.metric, INPUT_ROW.metricWeight * NC);
      this.ctx.device.queue.writeBuffer(entry.tokenIn, 0, tokenIn);
      pass.write(inputs);

      const loss = await GrpoLossKernel.create(this.ctx, NC, cfg, flags);
      names = loss.names;
      const rec = new Recorder(this.ctx);
      if (flags.ref && !givenReference) {
        pass.forward(rec, false);
        await pass.head(rec, scale);
        rec.copy(pass.logp, entry.tokenIn, NC * 4, 0, INPUT_ROW.ref * NC * 4);
      }
      pass.forward(rec, true);
      await pass.head(rec, scale);
      rec.add(...loss.dispatch({ logp: pass.logp, entropy: pass.entropy, tokenIn: entry.tokenIn, dlogp: pass.dlogp, terms: entry.terms, sums: this.sums }));
      await pass.backward(rec, scale);
      rec.submit();
      dispatches += rec.dispatches;
    }

    const learningRate = typeof spec.learningRate === 'function' ? spec.learningRate(this.stepCount) : spec.learningRate;
    const adam = await this.optimizer(spec.maxGradNorm ?? 1.0);
    const rec = new Recorder(this.ctx);
    for (const a of this.lora.adapters.values()) {
      rec.copy(a.a, this.flatParams, a.a.size, 0, a.offsetA * 4).copy(a.b, this.flatParams, a.b.size, 0, a.offsetB * 4);
      rec.copy(a.gradA, this.flatGrads, a.gradA.size, 0, a.offsetA * 4).copy(a.gradB, this.flatGrads, a.gradB.size, 0, a.offsetB * 4);
    }
    rec.add(...adam.step(this.stepCount + 1, learningRate, { params: this.flatParams, grads: this.flatGrads, m: this.m, v: this.v, norm: this.norm }));
    for (const a of this.lora.adapters.values()) {
      rec.copy(this.flatParams, a.a, a.a.size, a.offsetA * 4, 0).copy(this.flatParams, a.b, a.b.size, a.offsetB * 4, 0);
    }
    rec.submit();
    this.lastStepDispatches = dispatches + rec.dispatches;
    this.stepCount += 1;

    const [sumsRaw, normRaw] = await readBuffers(this.ctx, [this.sums, this.norm]);
    const sums = new Float32Array(sumsRaw);
    const metrics: Record<string, number> = {};
    names.forEach((name, i) => (metrics[name] = sums[i]));
    const lengths = all.map((r) => r.completion.length);
    const terminated = all.filter((r) => !rows.truncated[r.index]).map((r) => r.completion.length);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    Object.assign(metrics, {
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': all.filter((r) => rows.truncated[r.index]).length / all.length,
      'completions/mean_terminated_length': terminated.length ? mean(terminated) : 0,
      'completions/min_terminated_length': terminated.length ? Math.min(...terminated) : 0,
      'completions/max_terminated_length': terminated.length ? Math.max(...terminated) : 0,
      learning_rate: learningRate,
      grad_norm: new Float32Array(normRaw)[0],
    });
    const batchTokens = all.reduce((n, r) => n + r.prompt.length + r.completion.length, 0);
    if (!this.counted.has(rows.completionIds)) {
      this.counted.add(rows.completionIds);
      this.numTokensSeen += batchTokens;
    }
    metrics.num_tokens = this.numTokensSeen;
    metrics.step_time = (performance.now() - started) / 1000;
    return metrics;
  }

  async weights(): Promise<PolicyWeights> {
    const version = this.version;
    return { version, weights: await this.lora.read() };
  }

  /** The adapter tensors in order (A, B per adapter), for the optimiser state's layout. */
  private tensorLayout() {
    return [...this.lora.adapters.values()].flatMap((a) => {
      const names = GpuLoraWeights.names(a.path);
      return [
        { name: names.a, shape: [a.rank, a.inFeatures], offset: a.offsetA },
        { name: names.b, shape: [a.outFeatures, a.rank], offset: a.offsetB },
      ];
    });
  }

  async save(): Promise<TrainerState> {
    const step = this.stepCount;
    const weights = this.weights();
    const [mRaw, vRaw] = await readBuffers(this.ctx, [this.m, this.v]);
    const layout = this.tensorLayout();
    const slice = (raw: ArrayBuffer, t: (typeof layout)[number]) => new Float32Array(raw, t.offset * 4, t.shape[0] * t.shape[1]).slice();
    const optimizer: AdamWState = { step, m: layout.map((t) => slice(mRaw, t)), v: layout.map((t) => slice(vRaw, t)), names: layout.map((t) => t.name), shapes: layout.map((t) => t.shape) };
    return { weights: await weights, optimizer, rngStates: {}, numTokensSeen: this.numTokensSeen };
  }

  /** Puts a saved state back; a state without an optimiser restores the weights only. */
  restore(state: TrainerState, where = 'trainer state'): void {
    this.lora.set(state.weights.weights, where);
    const opt = state.optimizer as AdamWState | undefined;
    if (opt === undefined) return;
    const layout = this.tensorLayout();
    if (opt.m.length !== layout.length || opt.v.length !== layout.length) throw new Error(`${where}: optimizer state has ${opt.m.length} moments for ${layout.length} adapter tensors`);
    const m = new Float32Array(this.lora.size);
    const v = new Float32Array(this.lora.size);
    layout.forEach((t, i) => {
      const n = t.shape[0] * t.shape[1];
      if (opt.m[i].length !== n || opt.v[i].length !== n) throw new Error(`${where}: moment ${i} ("${opt.names?.[i] ?? '?'}") has ${opt.m[i].length} values, "${t.name}" [${t.shape}] needs ${n}`);
      m.set(opt.m[i], t.offset);
      v.set(opt.v[i], t.offset);
    });
    this.ctx.device.queue.writeBuffer(this.m, 0, m);
    this.ctx.device.queue.writeBuffer(this.v, 0, v);
    this.stepCount = opt.step;
    this.numTokensSeen = state.numTokensSeen;
  }

  dispose(): void {
    for (const e of this.passes.values()) {
      e.pass.destroy();
      this.ctx.release(e.tokenIn);
      this.ctx.release(e.terms);
    }
    this.passes.clear();
    this.rope.destroy();
    for (const b of [this.flatParams, this.flatGrads, this.m, this.v, this.norm, this.sums]) this.ctx.release(b);
  }
}

/** The loss options this trainer does not compute yet (the tfjs trainer computes them all): token-level
 *  ratios, grpo/bnpo/dr_grpo/dapo, and the sampler/trainer correction as token-level truncation only. */
export function lossOptionsNotOnDevice(spec: Partial<TrainStepConfig>): string[] {
  const out: string[] = [];
  const lossType = spec.lossType ?? 'grpo';
  if (!['grpo', 'bnpo', 'dr_grpo', 'dapo'].includes(lossType)) out.push(`loss_type ${lossType}`);
  if ((spec.importanceSamplingLevel ?? 'token') !== 'token') out.push(`importance_sampling_level ${spec.importanceSamplingLevel}`);
  if (spec.delta !== undefined && spec.delta !== null) out.push('delta');
  if ((spec.topEntropyQuantile ?? 1) < 1) out.push('top_entropy_quantile');
  if (spec.offPolicyMaskThreshold !== undefined && spec.offPolicyMaskThreshold !== null) out.push('off_policy_mask_threshold');
  if (spec.importanceSamplingCorrection) {
    const mode = spec.importanceSamplingMode ?? 'sequence_mask';
    if (mode !== 'token_truncate') out.push(`importance_sampling_mode ${mode} (token_truncate is)`);
    if (spec.importanceSamplingClipMin !== undefined && spec.importanceSamplingClipMin !== null) out.push('importance_sampling_clip_min');
  }
  return out;
}
