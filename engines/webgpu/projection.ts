// One linear projection of a decoder layer with its optional LoRA adapter, forward and backward, as
// GEMMs of kernels/gemm.ts (PEFT layouts: W [out, in], A [r, in], B [out, r], s the LoRA scale):
//   forward   u = x·Aᵀ (f32);  y (+)= x·Wᵀ + s·u·Bᵀ   (the adapter term is the base product's epilogue)
//   backward  dx (+)= dy·W;  gu = s·dy·B;  dB += s·dyᵀ·u;  dA += guᵀ·x;  dx += gu·A
// The base product reads the precision's operands (f16: x and dy cast to f16 by the caller, once per
// shared input); the adapter's small products stay in f32. The base weight is frozen (no dW), and a
// bias (Qwen2's q/k/v) only shifts the output, so it has no part in the backward.
import type { GpuContext, Recorder } from './device.js';
import { Gemm } from './kernels/gemm.js';
import type { Precision } from './weights.js';

export interface ProjectionShape {
  tokens: number;
  inFeatures: number;
  outFeatures: number;
  precision: Precision;
  /** The adapter's rank and scale, when the projection is targeted. */
  lora?: { rank: number; scale: number };
  /** The forward adds into y (the residual stream) instead of overwriting it. */
  accumulate?: boolean;
}

/** A projection's operands: x in f32 and, for precision f16, the same values in f16 (xh). */
export interface ProjectionInput {
  x: GPUBuffer;
  xh?: GPUBuffer;
  weight: GPUBuffer;
  adapter?: { a: GPUBuffer; b: GPUBuffer; gradA: GPUBuffer; gradB: GPUBuffer };
  /** x·Aᵀ [tokens, rank]: written by the forward, read by the backward. */
  u?: GPUBuffer;
}

export class Projection {
  private constructor(
    readonly shape: ProjectionShape,
    private readonly base: Gemm,
    private readonly baseWithAdapter: Gemm | undefined,
    private readonly down: Gemm | undefined,
    private readonly dxSet: Gemm,
    private readonly dxAdd: Gemm,
    private readonly adapterGrads: { gradU: Gemm; gradB: Gemm; gradA: Gemm; dxAdapter: Gemm } | undefined,
  ) {}

  static async create(ctx: GpuContext, shape: ProjectionShape): Promise<Projection> {
    const { tokens: N, inFeatures: I, outFeatures: O, precision } = shape;
    const input = precision;
    const acc = shape.accumulate ?? false;
    const f32 = { input: 'f32' as const };
    const lora = shape.lora;
    const [base, baseWithAdapter, down, dxSet, dxAdd] = await Promise.all([
      Gemm.create(ctx, { input, layout: 'nt', M: N, N: O, K: I, accumulate: acc }),
      lora ? Gemm.create(ctx, { input, layout: 'nt', M: N, N: O, K: I, accumulate: acc, lora: { rank: lora.rank, scale: lora.scale } }) : undefined,
      lora ? Gemm.create(ctx, { ...f32, layout: 'nt', M: N, N: lora.rank, K: I }) : undefined,
      Gemm.create(ctx, { input, layout: 'nn', M: N, N: I, K: O }),
      Gemm.create(ctx, { input, layout: 'nn', M: N, N: I, K: O, accumulate: true }),
    ]);
    let adapterGrads;
    if (lora) {
      const [gradU, gradB, gradA, dxAdapter] = await Promise.all([
        Gemm.create(ctx, { ...f32, layout: 'nn', M: N, N: lora.rank, K: O, scale: lora.scale }),
        Gemm.create(ctx, { ...f32, layout: 'tn', M: O, N: lora.rank, K: N, scale: lora.scale, accumulate: true }),
        Gemm.create(ctx, { ...f32, layout: 'tn', M: lora.rank, N: I, K: N, accumulate: true }),
        Gemm.create(ctx, { ...f32, layout: 'nn', M: N, N: I, K: lora.rank, accumulate: true }),
      ]);
      adapterGrads = { gradU, gradB, gradA, dxAdapter };
    }
    return new Projection(shape, base, baseWithAdapter, down, dxSet, dxAdd, adapterGrads);
  }

  private operand(x: GPUBuffer, xh: GPUBuffer | undefined, what: string): GPUBuffer {
    if (this.shape.precision === 'f32') return x;
    if (!xh) throw new Error(`projection ${this.shape.inFeatures}→${this.shape.outFeatures}: precision f16 needs the f16 copy of ${what}`);
    return xh;
  }

  /** y (+)= x·Wᵀ (+ the adapter's term when `t.adapter` is given and `adapters` is on). */
  forward(rec: Recorder, t: ProjectionInput, y: GPUBuffer, adapters: boolean): void {
    const x = this.operand(t.x, t.xh, 'x');
    if (adapters && t.adapter) {
      if (!this.baseWithAdapter || !this.down || !t.u) throw new Error('projection: an adapter was given to a projection built without LoRA');
      rec.add(this.down.dispatch(t.x, t.adapter.a, t.u), this.baseWithAdapter.dispatch(x, t.weight, y, { u: t.u, b: t.adapter.b }));
    } else rec.add(this.base.dispatch(x, t.weight, y));
  }

  /** dx (= or +=, per `accumulateDx`) from dy; the adapter's gradients accumulate. `gu` [tokens, rank] is scratch. */
  backward(rec: Recorder, t: ProjectionInput, g: { dy: GPUBuffer; dyh?: GPUBuffer; dx: GPUBuffer; gu?: GPUBuffer; accumulateDx: boolean }): void {
    const dy = this.operand(g.dy, g.dyh, 'dy');
    rec.add((g.accumulateDx ? this.dxAdd : this.dxSet).dispatch(dy, t.weight, g.dx));
    if (!t.adapter) return;
    if (!this.adapterGrads || !t.u || !g.gu) throw new Error('projection: adapter backward needs u and gu');
    const { gradU, gradB, gradA, dxAdapter } = this.adapterGrads;
    rec.add(
      gradU.dispatch(g.dy, t.adapter.b, g.gu),
      gradB.dispatch(g.dy, t.u, t.adapter.gradB),
      gradA.dispatch(g.gu, t.x, t.adapter.gradA),
      dxAdapter.dispatch(g.gu, t.adapter.a, g.dx),
    );
  }
}
