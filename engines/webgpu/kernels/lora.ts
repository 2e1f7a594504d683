// A linear layer with a LoRA adapter, in transformers/PEFT layouts: W [out, in], lora_A [r, in],
// lora_B [out, r], s = alpha / r, x [N, in]:
//   forward   u = x·Aᵀ,   y = x·Wᵀ + s·u·Bᵀ   (the adapter term is the base product's epilogue)
//   backward  gu = s·dy·B,   dB += s·dyᵀ·u,   dA += guᵀ·x,   dx = dy·W + gu·A
// The base weight is frozen (no dW). Every step is one of our GEMMs; the adapter gradients accumulate,
// so micro-batches add into the same buffers. f32 (exact mode) throughout for now: the f16 base needs
// GEMMs with mixed operand types for dA (f32 gu against f16 x), not written yet.
import type { Dispatch, GpuContext } from '../device.js';
import { Gemm } from './gemm.js';

export interface LoraLinearShape {
  tokens: number;
  inFeatures: number;
  outFeatures: number;
  rank: number;
  alpha: number;
}

export interface LoraBuffers {
  x: GPUBuffer;
  w: GPUBuffer;
  a: GPUBuffer;
  b: GPUBuffer;
  /** x·Aᵀ [N, r], written by the forward, read by the backward. */
  u: GPUBuffer;
}

export class LoraLinear {
  private constructor(
    readonly shape: LoraLinearShape,
    private readonly down: Gemm,
    private readonly base: Gemm,
    private readonly gradU: Gemm,
    private readonly gradB: Gemm,
    private readonly gradA: Gemm,
    private readonly gradXBase: Gemm,
    private readonly gradXAdapter: Gemm,
  ) {}

  static async create(ctx: GpuContext, shape: LoraLinearShape): Promise<LoraLinear> {
    const { tokens: N, inFeatures: I, outFeatures: O, rank: R } = shape;
    const s = shape.alpha / R;
    const f32 = { input: 'f32' as const };
    const gemms = await Promise.all([
      Gemm.create(ctx, { ...f32, layout: 'nt', M: N, N: R, K: I }),
      Gemm.create(ctx, { ...f32, layout: 'nt', M: N, N: O, K: I, lora: { rank: R, scale: s } }),
      Gemm.create(ctx, { ...f32, layout: 'nn', M: N, N: R, K: O, scale: s }),
      Gemm.create(ctx, { ...f32, layout: 'tn', M: O, N: R, K: N, scale: s, accumulate: true }),
      Gemm.create(ctx, { ...f32, layout: 'tn', M: R, N: I, K: N, accumulate: true }),
      Gemm.create(ctx, { ...f32, layout: 'nn', M: N, N: I, K: O }),
      Gemm.create(ctx, { ...f32, layout: 'nn', M: N, N: I, K: R, accumulate: true }),
    ]);
    return new LoraLinear(shape, ...(gemms as [Gemm, Gemm, Gemm, Gemm, Gemm, Gemm, Gemm]));
  }

  /** y [N, out] (u is written on the way). */
  forward(t: LoraBuffers, y: GPUBuffer): Dispatch[] {
    return [this.down.dispatch(t.x, t.a, t.u), this.base.dispatch(t.x, t.w, y, { u: t.u, b: t.b })];
  }

  /** dx [N, in] (overwritten) and dA, dB (accumulated) from dy; gu [N, r] is scratch. */
  backward(t: LoraBuffers, g: { dy: GPUBuffer; gu: GPUBuffer; dx: GPUBuffer; dA: GPUBuffer; dB: GPUBuffer }): Dispatch[] {
    return [
      this.gradU.dispatch(g.dy, t.b, g.gu),
      this.gradB.dispatch(g.dy, t.u, g.dB),
      this.gradA.dispatch(g.gu, t.x, g.dA),
      this.gradXBase.dispatch(g.dy, t.w, g.dx),
      this.gradXAdapter.dispatch(g.gu, t.a, g.dx),
    ];
  }
}
