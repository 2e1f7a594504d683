// RMSNorm as Llama computes it in float32: y = w ⊙ x · r with r = 1/√(mean(x²) + eps), per row of
// x [rows, D]. The forward keeps r [rows] for the backward:
//   dx = r·(g − x·r²·mean(g ⊙ x)) with g = dy ⊙ w,   dw (+)= Σ_rows dy ⊙ x · r.
// One workgroup per row; the row sums reduce through workgroup memory (no subgroup operations, so the
// same code runs on any adapter).
import type { Dispatch, GpuContext, Kernel } from '../device.js';

const THREADS = 128;

export interface RmsNormShape {
  rows: number;
  dim: number;
  eps: number;
}

/** A workgroup sum of `value` into every thread's `total` (THREADS threads, `red` workgroup scratch). */
const workgroupSum = (value: string, total: string) => `red[t] = ${value};
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  let ${total} = red[0];
  workgroupBarrier();`;

function header(s: RmsNormShape): string {
  return `const ROWS = ${s.rows}u;
const D = ${s.dim}u;
var<workgroup> red: array<f32, ${THREADS}>;`;
}

export function rmsNormForwardWgsl(s: RmsNormShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
${header(s)}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let base = wg.x * D;
  var ss = 0.0;
  for (var i = t; i < D; i += ${THREADS}u) { let v = x[base + i]; ss += v * v; }
  ${workgroupSum('ss', 'total')}
  let r = inverseSqrt(total / f32(D) + ${s.eps.toExponential()});
  for (var i = t; i < D; i += ${THREADS}u) { y[base + i] = w[i] * (x[base + i] * r); }
  if (t == 0u) { rstd[wg.x] = r; }
}
`;
}

export function rmsNormBackwardWgsl(s: RmsNormShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
${header(s)}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let base = wg.x * D;
  let r = rstd[wg.x];
  var dot = 0.0;
  for (var i = t; i < D; i += ${THREADS}u) { dot += dy[base + i] * w[i] * x[base + i]; }
  ${workgroupSum('dot', 'total')}
  let c = total / f32(D) * r * r;
  for (var i = t; i < D; i += ${THREADS}u) { dx[base + i] = r * (dy[base + i] * w[i] - x[base + i] * c); }
}
`;
}

/** dw[d] += Σ_rows dy[row, d]·x[row, d]·r[row]: one thread per column, rows in order (deterministic). */
export function rmsNormWeightGradWgsl(s: RmsNormShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
const ROWS = ${s.rows}u;
const D = ${s.dim}u;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let d = g.x;
  if (d >= D) { return; }
  var acc = 0.0;
  for (var row = 0u; row < ROWS; row++) { acc += dy[row * D + d] * x[row * D + d] * rstd[row]; }
  dw[d] += acc;
}
`;
}

export class RmsNorm {
  private constructor(
    readonly shape: RmsNormShape,
    private readonly fwd: Kernel,
    private readonly bwd: Kernel,
    private readonly wgrad: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: RmsNormShape): Promise<RmsNorm> {
    const [fwd, bwd, wgrad] = await Promise.all([
      ctx.kernel(rmsNormForwardWgsl(shape), [shape.rows]),
      ctx.kernel(rmsNormBackwardWgsl(shape), [shape.rows]),
      ctx.kernel(rmsNormWeightGradWgsl(shape), [Math.ceil(shape.dim / 64)]),
    ]);
    return new RmsNorm(shape, fwd, bwd, wgrad);
  }

  /** y = rmsnorm(x)·w; rstd [rows] kept for the backward. */
  forward(x: GPUBuffer, w: GPUBuffer, y: GPUBuffer, rstd: GPUBuffer): Dispatch {
    return this.fwd.dispatch(x, w, y, rstd);
  }

  /** dx from dy (overwritten). */
  backward(dy: GPUBuffer, x: GPUBuffer, w: GPUBuffer, rstd: GPUBuffer, dx: GPUBuffer): Dispatch {
    return this.bwd.dispatch(dy, x, w, rstd, dx);
  }

  /** dw += the weight gradient (accumulates, so micro-batches add up). */
  weightGrad(dy: GPUBuffer, x: GPUBuffer, rstd: GPUBuffer, dw: GPUBuffer): Dispatch {
    return this.wgrad.dispatch(dy, x, rstd, dw);
  }
}
