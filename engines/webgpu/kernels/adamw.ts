// AdamW with global-norm gradient clipping over one flat buffer of (LoRA) parameters, as torch does it:
//   clip = min(1, maxNorm / (‖g‖ + 1e-6));  g ← g·clip
//   p ← p·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
// Two launches: per-workgroup partial sums of g² (fixed order), then the update, where every workgroup
// adds the partials itself (a few hundred at most), so the norm needs no read-back and no third launch.
// The step's scalars live in a uniform written before each submit: one optimizer step per submission.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

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

export function gradNormPartialsWgsl(size: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let i = wg.x * ${THREADS}u + t;
  var v = 0.0;
  if (i < ${size}u) { v = g[i] * g[i]; }
  red[t] = v;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u) { partials[wg.x] = red[0]; }
}
`;
}

export function adamwUpdateWgsl(size: number, groups: number): string {
  return /* wgsl */ `struct Step { lr: f32, beta1: f32, beta2: f32, eps: f32, decay: f32, maxNorm: f32, biasCorrection1: f32, biasCorrection2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32 }
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> norm: array<f32>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  var ss = 0.0;
  for (var k = 0u; k < ${groups}u; k++) { ss += partials[k]; }
  let total = sqrt(ss);
  let clip = min(1.0, step.maxNorm / (total + 1e-6));
  let i = wg.x * ${THREADS}u + t;
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

  private constructor(
    private readonly ctx: GpuContext,
    readonly options: Required<AdamWOptions>,
    private readonly normKernel: Kernel,
    private readonly updateKernel: Kernel,
  ) {
    this.groups = Math.ceil(options.size / THREADS);
    this.stepUniform = ctx.uniform(new Array(10).fill(0));
    this.partials = ctx.storage(this.groups * 4);
  }

  static async create(ctx: GpuContext, options: AdamWOptions): Promise<AdamW> {
    const full: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: Infinity, ...options };
    const groups = Math.ceil(full.size / THREADS);
    if (groups > 65535) throw new Error(`adamw: ${full.size} parameters exceed one launch (${65535 * THREADS})`);
    const [norm, update] = await Promise.all([ctx.kernel(gradNormPartialsWgsl(full.size), [groups]), ctx.kernel(adamwUpdateWgsl(full.size, groups), [groups])]);
    return new AdamW(ctx, full, norm, update);
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
      this.updateKernel.dispatch(this.stepUniform, this.partials, buffers.grads, buffers.params, buffers.m, buffers.v, buffers.norm),
    ];
  }
}
