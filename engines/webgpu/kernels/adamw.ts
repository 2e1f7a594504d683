// AdamW with global-norm gradient clipping over one flat buffer of (LoRA) parameters, as torch does it:
//   clip = min(1, maxNorm / (‖g‖ + 1e-6));  g ← g·clip
//   p ← p·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
// Three launches: per-workgroup partial sums of g² (fixed order), their sum in one workgroup (fixed
// order), then the update reading that total: the norm needs no read-back. Grids are 2-D, so a flat
// vector may exceed 65535 workgroups (LoRA r64 on a 3B model is ~97M parameters).
// The step's scalars live in a uniform written before each submit: one optimizer step per submission.
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseGrid } from './grid.js';

const THREADS = 256;

export interface AdamWOptions {
  size: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Global-norm clipping threshold; Infinity (default) turns clipping off. */
  maxGradNorm?: number;
}

/** The flat workgroup index of a 2-D launch (elementwiseGrid). */
const FLAT_GROUP = `let group = wg.y * nw.x + wg.x;`;

export function gradNormPartialsWgsl(size: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) t: u32) {
  ${FLAT_GROUP}
  let i = group * ${THREADS}u + t;
  var v = 0.0;
  if (i < ${size}u) { v = g[i] * g[i]; }
  red[t] = v;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  // A 2-D grid may have a few workgroups past the end: they must not write (clamped stores would land
  // on the last partial).
  if (t == 0u && group < ${Math.ceil(size / THREADS)}u) { partials[group] = red[0]; }
}
`;
}

/** total[0] = Σ partials, one workgroup, each thread a strided share then a tree: a fixed order. */
export function sumPartialsWgsl(groups: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> total: array<f32>;
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var k = t; k < ${groups}u; k += ${THREADS}u) { s += partials[k]; }
  red[t] = s;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) { total[0] = red[0]; }
}
`;
}

export function adamwUpdateWgsl(size: number): string {
  return /* wgsl */ `struct Step { lr: f32, beta1: f32, beta2: f32, eps: f32, decay: f32, maxNorm: f32, biasCorrection1: f32, biasCorrection2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32 }
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> sumSquares: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> norm: array<f32>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) t: u32) {
  let total = sqrt(sumSquares[0]);
  let clip = min(1.0, step.maxNorm / (total + 1e-6));
  ${FLAT_GROUP}
  let i = group * ${THREADS}u + t;
  if (i == 0u) { norm[0] = total; }
  if (i >= ${size}u) { return; }
  let gi = g[i] * clip;
  let mi = step.beta1 * m[i] + step.oneMinusBeta1 * gi;
  let vi = step.beta2 * v[i] + step.oneMinusBeta2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let decayed = p[i] * (1.0 - step.lr * step.decay);
  p[i] = decayed - (step.lr / step.biasCorrection1) * mi / (sqrt(vi) / sqrt(step.biasCorrection2) + step.eps);
}
`;
}

export class AdamW {
  private readonly groups: number;
  private readonly stepUniform: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly sumSquares: GPUBuffer;

  private constructor(
    private readonly ctx: GpuContext,
    readonly options: Required<AdamWOptions>,
    private readonly normKernel: Kernel,
    private readonly sumKernel: Kernel,
    private readonly updateKernel: Kernel,
  ) {
    this.groups = Math.ceil(options.size / THREADS);
    this.stepUniform = ctx.uniform(new Array(10).fill(0));
    this.partials = ctx.storage(this.groups * 4);
    this.sumSquares = ctx.storage(4);
  }

  static async create(ctx: GpuContext, options: AdamWOptions): Promise<AdamW> {
    const full: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: Infinity, ...options };
    const groups = Math.ceil(full.size / THREADS);
    const grid = elementwiseGrid(full.size, THREADS);
    const [norm, sum, update] = await Promise.all([
      ctx.kernel(gradNormPartialsWgsl(full.size), grid),
      ctx.kernel(sumPartialsWgsl(groups), [1]),
      ctx.kernel(adamwUpdateWgsl(full.size), grid),
    ]);
    return new AdamW(ctx, full, norm, sum, update);
  }

  /** The launches of optimizer step `t` (1-based) at learning rate `lr`; writes the step's uniform, so
   *  submit them before recording the next step. `norm` [1] receives the unclipped gradient norm. */
  step(t: number, lr: number, buffers: { params: GPUBuffer; grads: GPUBuffer; m: GPUBuffer; v: GPUBuffer; norm: GPUBuffer }): Dispatch[] {
    const o = this.options;
    const maxNorm = Number.isFinite(o.maxGradNorm) ? o.maxGradNorm : 3.4e38;
    // 1 − β and the bias corrections in float64 on the host: 1 − f32(0.999) in f32 is off by 1.3e-5.
    const words = new Float32Array([lr, o.beta1, o.beta2, o.eps, o.weightDecay, maxNorm, 1 - o.beta1 ** t, 1 - o.beta2 ** t, 1 - o.beta1, 1 - o.beta2]);
    this.ctx.device.queue.writeBuffer(this.stepUniform, 0, words);
    return [
      this.normKernel.dispatch(buffers.grads, this.partials),
      this.sumKernel.dispatch(this.partials, this.sumSquares),
      this.updateKernel.dispatch(this.stepUniform, this.sumSquares, buffers.grads, buffers.params, buffers.m, buffers.v, buffers.norm),
    ];
  }
}
