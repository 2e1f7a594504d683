// The decoder, forward and backward, explicitly from our kernels (llm.c style), for one batch shape:
// B rows of T positions ([prompt | completion | right padding], positions 0..T−1), and the C completion
// slots per row whose log-probs are taken (row b's slot j is predicted by position P_b + j − 1).
//   forward   embed → L × layer → pick the predicting rows → final norm → lm_head + log-softmax + entropy
//   backward  lm_head → final norm → scatter into [N, H] → L × (recompute the layer, then its backward)
// Gradient checkpointing always: only each layer's input [N, H] is kept; the layer's intermediates are
// recomputed inside its backward into one workspace shared by all layers. Only the LoRA A/B receive
// gradients (accumulated, so micro-batches add up). Llama, Mistral (full attention), Qwen2 (q/k/v
// biases), Qwen3 (q/k norms); weights.ts refuses what this does not compute.
import type { ModelConfig } from '../../core/llm/config.js';
import { PROJECTIONS, type ProjectionName } from '../../core/llm/projections.js';
import type { GpuContext, Recorder } from './device.js';
import { Attention } from './kernels/attention.js';
import { AddBias, AddInto, CastF16, RowIndex } from './kernels/elementwise.js';
import { Embedding } from './kernels/embedding.js';
import { LmHeadLogSoftmax } from './kernels/lm-head.js';
import { RmsNorm } from './kernels/rmsnorm.js';
import { Rope, ropeTable } from './kernels/rope.js';
import { SwiGlu } from './kernels/swiglu.js';
import { Projection } from './projection.js';
import type { GpuLoraWeights, GpuModelWeights } from './weights.js';

export interface PassShape {
  /** Rows. */
  batch: number;
  /** Positions per row (prompt + completion + padding). */
  tokens: number;
  /** Completion slots per row. */
  completion: number;
}

/** Host inputs of one pass (one micro-batch), laid out for the shape. */
export interface PassInputs {
  /** [B·T] token ids (padding: any id). */
  ids: Uint32Array<ArrayBuffer>;
  /** [B·T] 1 for real tokens. */
  valid: Uint32Array<ArrayBuffer>;
  /** [B·C] the position (b·T + P_b + j − 1) predicting each completion slot; B·T for a padding slot. */
  predicting: Uint32Array<ArrayBuffer>;
  /** [B·C] the completion token of each slot (0 for padding). */
  targets: Uint32Array<ArrayBuffer>;
}

const INPUT_OF: Record<ProjectionName, 'h1' | 'att' | 'h2' | 'm'> = {
  q_proj: 'h1', k_proj: 'h1', v_proj: 'h1', o_proj: 'att', gate_proj: 'h2', up_proj: 'h2', down_proj: 'm',
};

/** Kernels and buffers for one PassShape. */
export class DecoderPass {
  readonly N: number;
  readonly NC: number;
  /** Per-slot outputs of the last head(): log-probs and entropies [B·C]. */
  readonly logp: GPUBuffer;
  readonly entropy: GPUBuffer;
  /** dlogp [B·C]: what backward() starts from (written by the loss). */
  readonly dlogp: GPUBuffer;
  private readonly buffers: GPUBuffer[] = [];
  private readonly heads = new Map<number, LmHeadLogSoftmax>();
  private readonly b: Record<string, GPUBuffer> = {};
  private readonly hidden: GPUBuffer[];
  private constructor(
    private readonly ctx: GpuContext,
    readonly weights: GpuModelWeights,
    readonly lora: GpuLoraWeights | undefined,
    readonly shape: PassShape,
    private readonly k: Awaited<ReturnType<typeof createKernels>>,
    private readonly rope: { positions: GPUBuffer; cos: GPUBuffer; sin: GPUBuffer },
  ) {
    const c = weights.config;
    const { batch: B, tokens: T, completion: C } = shape;
    this.N = B * T;
    this.NC = B * C;
    const N = this.N;
    const H = c.hiddenSize;
    const QD = c.numHeads * c.headDim;
    const KD = c.numKvHeads * c.headDim;
    const M = c.intermediateSize;
    const f16 = weights.precision === 'f16';
    const r = lora?.config.r ?? 0;
    const f32 = (name: string, n: number) => (this.b[name] = this.alloc(n * 4));
    const half = (name: string, n: number) => f16 && (this.b[name] = this.alloc(n * 2));
    this.hidden = Array.from({ length: c.numLayers + 1 }, () => this.alloc(N * H * 4));
    for (const name of ['ids', 'valid']) f32(name, N);
    for (const name of ['predicting', 'targets']) f32(name, this.NC);
    f32('h1', N * H); half('h1h', N * H); f32('rstd1', N);
    f32('q', N * QD); f32('k', N * KD); f32('v', N * KD);
    if (c.qkNorm) { f32('qn', N * QD); f32('kn', N * KD); f32('rstdq', N * c.numHeads); f32('rstdk', N * c.numKvHeads); }
    f32('qr', N * QD); f32('kr', N * KD);
    f32('att', N * QD); half('atth', N * QD); f32('lse', N * c.numHeads);
    f32('mid', N * H); f32('h2', N * H); half('h2h', N * H); f32('rstd2', N);
    f32('g', N * M); f32('u', N * M); f32('m', N * M); half('mh', N * M);
    if (r) for (const p of PROJECTIONS) { f32(`lu_${p}`, N * r); }
    if (r) f32('gu', N * r);
    // The head's inputs and outputs over the B·C slots.
    f32('picked', this.NC * H); f32('normed', this.NC * H); f32('rstdF', this.NC);
    this.logp = f32('logp', this.NC); this.entropy = f32('entropy', this.NC); f32('stats', this.NC * 2);
    this.dlogp = f32('dlogpIn', this.NC); f32('dentropy', this.NC);
    // Gradients: two [N, H] streams (layer output / input), the mid-layer stream, and per-op scratch.
    f32('dy', N * H); f32('dx', N * H); f32('dmid', N * H); half('dh', N * H); f32('tmpH', N * H);
    f32('dm', N * M); f32('dg', N * M); f32('du', N * M); half('dgh', N * M); half('duh', N * M);
    f32('dh1', N * H); f32('dh2', N * H);
    f32('datt', N * QD); half('datth', N * QD); f32('delta', N * c.numHeads);
    f32('dqr', N * QD); f32('dkr', N * KD); f32('dv', N * KD); f32('dq', N * QD); f32('dk', N * KD);
    if (c.qkNorm) { f32('dqn', N * QD); f32('dkn', N * KD); }
    half('dqh', N * QD); half('dkh', N * KD); half('dvh', N * KD);
    f32('dPicked', this.NC * H); f32('dNormed', this.NC * H);
    ctx.device.queue.writeBuffer(this.b.dentropy, 0, new Float32Array(this.NC));
  }

  static async create(ctx: GpuContext, weights: GpuModelWeights, lora: GpuLoraWeights | undefined, shape: PassShape, rope: { positions: GPUBuffer; cos: GPUBuffer; sin: GPUBuffer }): Promise<DecoderPass> {
    const c = weights.config;
    const rows = shape.batch * shape.tokens * (c.qkNorm ? c.numHeads : 1);
    // RMSNorm and the lm_head launch one workgroup per row, at most 65535 of them.
    if (rows > 65535 || shape.batch * shape.completion > 65535) {
      throw new Error(`webgpu decoder: ${shape.batch} rows × ${shape.tokens} positions${c.qkNorm ? ` × ${c.numHeads} heads (q/k norms)` : ''} is past one launch (65535 rows); use a smaller micro-batch`);
    }
    const kernels = await createKernels(ctx, c, weights.precision, lora, shape);
    return new DecoderPass(ctx, weights, lora, shape, kernels, rope);
  }

  private alloc(bytes: number): GPUBuffer {
    const buffer = this.ctx.storage(bytes);
    this.buffers.push(buffer);
    return buffer;
  }

  /** Bytes this shape's buffers hold. */
  get bytes(): number {
    return this.buffers.reduce((n, b) => n + b.size, 0);
  }

  /** Queues the host inputs (before the submission that records this pass). */
  write(inputs: PassInputs): void {
    const q = this.ctx.device.queue;
    q.writeBuffer(this.b.ids, 0, inputs.ids);
    q.writeBuffer(this.b.valid, 0, inputs.valid);
    q.writeBuffer(this.b.predicting, 0, inputs.predicting);
    q.writeBuffer(this.b.targets, 0, inputs.targets);
  }

  /** Embedding and every layer: the layer inputs stay in `hidden` for the backward. */
  forward(rec: Recorder, adapters: boolean): void {
    rec.add(this.k.embed.gather(this.b.ids, this.weights.embedTokens, this.hidden[0]));
    for (let l = 0; l < this.weights.config.numLayers; l++) this.layerForward(rec, l, this.hidden[l], this.hidden[l + 1], adapters);
  }

  /** Log-probs (and entropies) of the completion slots at 1/temperature `scale` into logp / entropy. */
  async head(rec: Recorder, scale: number): Promise<void> {
    const lmHead = await this.lmHead(scale);
    const b = this.b;
    rec.add(
      this.k.pick.gather(b.predicting, this.hidden[this.weights.config.numLayers], b.picked),
      this.k.finalNorm.forward(b.picked, this.weights.finalNorm, b.normed, b.rstdF),
      lmHead.forward(b.normed, this.weights.lmHead, b.targets, this.logp, this.entropy, b.stats),
    );
  }

  /** The lm_head kernel for a temperature (compiled once per scale and shape). */
  async lmHead(scale: number): Promise<LmHeadLogSoftmax> {
    let op = this.heads.get(scale);
    if (!op) {
      const c = this.weights.config;
      op = await LmHeadLogSoftmax.create(this.ctx, { rows: this.NC, hidden: c.hiddenSize, vocab: c.vocabSize, scale });
      this.heads.set(scale, op);
    }
    return op;
  }

  /** Gradients of the adapters from dlogp (after forward(…, true) and head(…, scale) of this pass). */
  async backward(rec: Recorder, scale: number): Promise<void> {
    const lmHead = await this.lmHead(scale);
    const b = this.b;
    const L = this.weights.config.numLayers;
    rec.add(
      lmHead.backward(b.normed, this.weights.lmHead, b.targets, b.stats, this.dlogp, b.dentropy, b.dNormed),
      this.k.finalNorm.backward(b.dNormed, b.picked, this.weights.finalNorm, b.rstdF, b.dPicked),
    );
    rec.clear(b.dy);
    rec.add(this.k.pick.scatter(b.predicting, b.dPicked, b.dy));
    let dy = b.dy;
    let dx = b.dx;
    for (let l = L - 1; l >= 0; l--) {
      this.layerForward(rec, l, this.hidden[l], this.hidden[l + 1], true);
      this.layerBackward(rec, l, this.hidden[l], dy, dx);
      [dy, dx] = [dx, dy];
    }
  }

  private projectionInput(l: number, p: ProjectionName, adapters: boolean) {
    const b = this.b;
    const x = INPUT_OF[p];
    const adapter = adapters ? this.lora?.of(l, p) : undefined;
    return { x: b[x], xh: b[`${x}h`], weight: this.weights.layers[l].proj[p].weight, adapter, u: b[`lu_${p}`] };
  }

  private layerForward(rec: Recorder, l: number, xin: GPUBuffer, xout: GPUBuffer, adapters: boolean): void {
    const { k, b } = this;
    const c = this.weights.config;
    const W = this.weights.layers[l];
    const f16 = this.weights.precision === 'f16';
    const cast = (op: CastF16, x: GPUBuffer, y: GPUBuffer) => f16 && rec.add(op.dispatch(x, y));
    const project = (p: ProjectionName, y: GPUBuffer) => {
      k.proj[p].forward(rec, this.projectionInput(l, p, adapters), y, adapters);
      const bias = W.proj[p].bias;
      if (bias) rec.add(k.bias[p as 'q_proj' | 'k_proj' | 'v_proj'].dispatch(bias, y));
    };
    rec.add(k.norm.forward(xin, W.inputNorm, b.h1, b.rstd1));
    cast(k.castH, b.h1, b.h1h);
    project('q_proj', b.q);
    project('k_proj', b.k);
    project('v_proj', b.v);
    let q = b.q;
    let kk = b.k;
    if (c.qkNorm) {
      rec.add(k.qNorm!.forward(b.q, W.qNorm!, b.qn, b.rstdq), k.kNorm!.forward(b.k, W.kNorm!, b.kn, b.rstdk));
      q = b.qn;
      kk = b.kn;
    }
    const { positions, cos, sin } = this.rope;
    rec.add(k.ropeQ.forward(q, positions, cos, sin, b.qr), k.ropeK.forward(kk, positions, cos, sin, b.kr));
    rec.add(k.attention.forward(b.qr, b.kr, b.v, b.valid, b.att, b.lse));
    cast(k.castQ, b.att, b.atth);
    rec.copy(xin, b.mid);
    project('o_proj', b.mid);
    rec.add(k.norm.forward(b.mid, W.postAttentionNorm, b.h2, b.rstd2));
    cast(k.castH, b.h2, b.h2h);
    project('gate_proj', b.g);
    project('up_proj', b.u);
    rec.add(k.swiglu.forward(b.g, b.u, b.m));
    cast(k.castM, b.m, b.mh);
    rec.copy(b.mid, xout);
    project('down_proj', xout);
  }

  /** dx = ∂/∂xin from dy = ∂/∂xout, with the layer's intermediates in the workspace (just recomputed). */
  private layerBackward(rec: Recorder, l: number, xin: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer): void {
    const { k, b } = this;
    const c = this.weights.config;
    const W = this.weights.layers[l];
    const f16 = this.weights.precision === 'f16';
    const cast = (op: CastF16, x: GPUBuffer, y: GPUBuffer) => f16 && rec.add(op.dispatch(x, y));
    const back = (p: ProjectionName, dyBuf: GPUBuffer, dyh: GPUBuffer | undefined, dxBuf: GPUBuffer, accumulateDx: boolean) =>
      k.proj[p].backward(rec, this.projectionInput(l, p, true), { dy: dyBuf, dyh, dx: dxBuf, gu: b.gu, accumulateDx });
    // MLP: out = mid + down(swiglu(gate(h2), up(h2))), h2 = norm(mid).
    cast(k.castH, dy, b.dh);
    back('down_proj', dy, b.dh, b.dm, false);
    rec.add(k.swiglu.backward(b.dm, b.g, b.u, b.dg, b.du));
    cast(k.castM, b.dg, b.dgh);
    cast(k.castM, b.du, b.duh);
    back('gate_proj', b.dg, b.dgh, b.dh2, false);
    back('up_proj', b.du, b.duh, b.dh2, true);
    rec.add(k.norm.backward(b.dh2, b.mid, W.postAttentionNorm, b.rstd2, b.tmpH));
    rec.copy(dy, b.dmid);
    rec.add(k.addH.dispatch(b.tmpH, b.dmid));
    // Attention: mid = in + o(attention(rope(q), rope(k), v)), q/k/v = proj(h1), h1 = norm(in).
    cast(k.castH, b.dmid, b.dh);
    back('o_proj', b.dmid, b.dh, b.datt, false);
    rec.add(...k.attention.backward({ q: b.qr, k: b.kr, v: b.v, valid: b.valid, o: b.att, lse: b.lse, dO: b.datt, delta: b.delta, dq: b.dqr, dk: b.dkr, dv: b.dv }));
    const { positions, cos, sin } = this.rope;
    const dqIn = c.qkNorm ? b.dqn : b.dq;
    const dkIn = c.qkNorm ? b.dkn : b.dk;
    rec.add(k.ropeQ.backward(b.dqr, positions, cos, sin, dqIn), k.ropeK.backward(b.dkr, positions, cos, sin, dkIn));
    if (c.qkNorm) rec.add(k.qNorm!.backward(b.dqn, b.q, W.qNorm!, b.rstdq, b.dq), k.kNorm!.backward(b.dkn, b.k, W.kNorm!, b.rstdk, b.dk));
    cast(k.castQ, b.dq, b.dqh);
    cast(k.castK, b.dk, b.dkh);
    cast(k.castK, b.dv, b.dvh);
    back('q_proj', b.dq, b.dqh, b.dh1, false);
    back('k_proj', b.dk, b.dkh, b.dh1, true);
    back('v_proj', b.dv, b.dvh, b.dh1, true);
    rec.add(k.norm.backward(b.dh1, xin, W.inputNorm, b.rstd1, b.tmpH));
    rec.copy(b.dmid, dx);
    rec.add(k.addH.dispatch(b.tmpH, dx));
  }

  destroy(): void {
    for (const buffer of this.buffers) this.ctx.release(buffer);
    this.buffers.length = 0;
  }
}

async function createKernels(ctx: GpuContext, c: ModelConfig, precision: 'f16' | 'f32', lora: GpuLoraWeights | undefined, shape: PassShape) {
  const { batch: B, tokens: T, completion: C } = shape;
  const N = B * T;
  const NC = B * C;
  const H = c.hiddenSize;
  const QD = c.numHeads * c.headDim;
  const KD = c.numKvHeads * c.headDim;
  const M = c.intermediateSize;
  const io: Record<ProjectionName, [number, number]> = {
    q_proj: [H, QD], k_proj: [H, KD], v_proj: [H, KD], o_proj: [QD, H], gate_proj: [H, M], up_proj: [H, M], down_proj: [M, H],
  };
  const projEntries = await Promise.all(
    PROJECTIONS.map(async (p) => {
      const targeted = lora?.config.targetModules.includes(p);
      const op = await Projection.create(ctx, {
        tokens: N,
        inFeatures: io[p][0],
        outFeatures: io[p][1],
        precision,
        lora: targeted ? { rank: lora!.config.r, scale: lora!.scale } : undefined,
        accumulate: p === 'o_proj' || p === 'down_proj',
      });
      return [p, op] as const;
    }),
  );
  const norm = (rows: number, dim: number) => RmsNorm.create(ctx, { rows, dim, eps: c.rmsNormEps });
  const [normOp, finalNorm, qNorm, kNorm, ropeQ, ropeK, attention, swiglu, castH, castQ, castK, castM, addH, embed, pick, bq, bk, bv] = await Promise.all([
    norm(N, H),
    norm(NC, H),
    c.qkNorm ? norm(N * c.numHeads, c.headDim) : undefined,
    c.qkNorm ? norm(N * c.numKvHeads, c.headDim) : undefined,
    Rope.create(ctx, { tokens: N, heads: c.numHeads, headDim: c.headDim }),
    Rope.create(ctx, { tokens: N, heads: c.numKvHeads, headDim: c.headDim }),
    Attention.create(ctx, { batch: B, tokens: T, queryHeads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim }),
    SwiGlu.create(ctx, N * M),
    CastF16.create(ctx, N * H),
    CastF16.create(ctx, N * QD),
    CastF16.create(ctx, N * KD),
    CastF16.create(ctx, N * M),
    AddInto.create(ctx, N * H),
    Embedding.create(ctx, { tokens: N, vocab: c.vocabSize, hidden: H }),
    RowIndex.create(ctx, { rows: N, picked: NC, width: H }),
    AddBias.create(ctx, N, QD),
    AddBias.create(ctx, N, KD),
    AddBias.create(ctx, N, KD),
  ]);
  return {
    proj: Object.fromEntries(projEntries) as Record<ProjectionName, Projection>,
    bias: { q_proj: bq, k_proj: bk, v_proj: bv },
    norm: normOp, finalNorm, qNorm, kNorm, ropeQ, ropeK, attention, swiglu, castH, castQ, castK, castM, addH, embed, pick,
  };
}

/** Positions 0..T−1 of every row and the rope tables, for passes of up to `tokens` positions per row. */
export class RopeInputs {
  private cache = new Map<string, { positions: GPUBuffer; cos: GPUBuffer; sin: GPUBuffer }>();
  private table?: { length: number; cos: GPUBuffer; sin: GPUBuffer };
  constructor(
    private readonly ctx: GpuContext,
    private readonly config: ModelConfig,
  ) {}

  for(shape: PassShape): { positions: GPUBuffer; cos: GPUBuffer; sin: GPUBuffer } {
    if (!this.table || this.table.length < shape.tokens) {
      // Kept, not replaced, while passes built on the old table live: tables only grow.
      const { cos, sin } = ropeTable(this.config, shape.tokens);
      this.table = { length: shape.tokens, cos: this.ctx.upload(cos), sin: this.ctx.upload(sin) };
      this.old.push(this.table);
    }
    const key = `${shape.batch}x${shape.tokens}`;
    let entry = this.cache.get(key);
    if (!entry) {
      const positions = Uint32Array.from({ length: shape.batch * shape.tokens }, (_, i) => i % shape.tokens);
      entry = { positions: this.ctx.upload(positions), cos: this.table.cos, sin: this.table.sin };
      this.cache.set(key, entry);
    }
    return entry;
  }

  private readonly old: { cos: GPUBuffer; sin: GPUBuffer }[] = [];

  destroy(): void {
    for (const e of this.cache.values()) this.ctx.release(e.positions);
    for (const t of this.old) {
      this.ctx.release(t.cos);
      this.ctx.release(t.sin);
    }
    this.cache.clear();
    this.old.length = 0;
  }
}
