// The lm_head product fused with the selective log-softmax and the entropy, in vocabulary chunks: for
// each token row n of hidden states h [N, H] and the head W [V, H] (transformers' layout; tied to the
// embeddings in the small Llamas),
//   logit_v = scale·h·W_v,   logp[n] = logit_target − lse,   entropy[n] = lse − Σ_v p_v logit_v,
// with no [N, V] tensor: each workgroup streams the vocabulary through an online (max, Σe, Σe·logit)
// reduction and keeps only lse and the mean logit for the backward. `scale` is 1/temperature.
// Backward from dlogp and dentropy (the head is frozen under LoRA, so only dh):
//   dlogit_v = dlogp·(δ_v,target − p_v) − dentropy·p_v·(logit_v − mean),   dh = scale·Σ_v dlogit_v W_v,
// recomputing each chunk's logits, staging its dlogit in workgroup memory, then every thread adds the
// chunk into its own columns of dh.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

const THREADS = 128;

export interface LmHeadShape {
  rows: number;
  hidden: number;
  vocab: number;
  /** 1/temperature applied to the logits (default 1). */
  scale?: number;
}

function common(s: LmHeadShape): string {
  return `const N = ${s.rows}u;
const H = ${s.hidden}u;
const V = ${s.vocab}u;
const SCALE = ${s.scale ?? 1};
const NONE = -1e30;
var<workgroup> hs: array<f32, ${s.hidden}>;
fn logitOf(v: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < H; d++) { acc += hs[d] * W[v * H + d]; }
  return acc * SCALE;
}`;
}

export function lmHeadForwardWgsl(s: LmHeadShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;
@group(0) @binding(4) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
${common(s)}
var<workgroup> rm: array<f32, ${THREADS}>;
var<workgroup> rs: array<f32, ${THREADS}>;
var<workgroup> ru: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = wg.x;
  for (var d = t; d < H; d += ${THREADS}u) { hs[d] = h[n * H + d]; }
  workgroupBarrier();
  // This thread's share of the vocabulary: running max m, s = Σ e^(l−m), u = Σ e^(l−m)·l.
  var m = NONE;
  var sum = 0.0;
  var u = 0.0;
  for (var v = t; v < V; v += ${THREADS}u) {
    let l = logitOf(v);
    let mNew = max(m, l);
    let c = exp(m - mNew);
    let e = exp(l - mNew);
    sum = sum * c + e;
    u = u * c + e * l;
    m = mNew;
  }
  rm[t] = m; rs[t] = sum; ru[t] = u;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      let m2 = max(rm[t], rm[t + stride]);
      let c1 = exp(rm[t] - m2);
      let c2 = exp(rm[t + stride] - m2);
      rs[t] = rs[t] * c1 + rs[t + stride] * c2;
      ru[t] = ru[t] * c1 + ru[t + stride] * c2;
      rm[t] = m2;
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let lse = rm[0] + log(rs[0]);
    let mean = ru[0] / rs[0];
    logp[n] = logitOf(targets[n]) - lse;
    entropy[n] = lse - mean;
    stats[2u * n] = lse;
    stats[2u * n + 1u] = mean;
  }
}
`;
}

export function lmHeadBackwardWgsl(s: LmHeadShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> dlogp: array<f32>;
@group(0) @binding(5) var<storage, read> dentropy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dh: array<f32>;
${common(s)}
var<workgroup> dl: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = wg.x;
  for (var d = t; d < H; d += ${THREADS}u) { hs[d] = h[n * H + d]; }
  workgroupBarrier();
  let lse = stats[2u * n];
  let mean = stats[2u * n + 1u];
  let gl = dlogp[n];
  let ge = dentropy[n];
  let tgt = targets[n];
  // Columns of dh this thread owns (H / THREADS of them, at most ${Math.ceil(s.hidden / THREADS)}).
  var acc: array<f32, ${Math.ceil(s.hidden / THREADS)}>;
  for (var v0 = 0u; v0 < V; v0 += ${THREADS}u) {
    let v = v0 + t;
    var g = 0.0;
    if (v < V) {
      let l = logitOf(v);
      let p = exp(l - lse);
      g = gl * (select(0.0, 1.0, v == tgt) - p) - ge * p * (l - mean);
    }
    dl[t] = g;
    workgroupBarrier();
    let count = min(${THREADS}u, V - v0);
    for (var c = 0u; c < ${Math.ceil(s.hidden / THREADS)}u; c++) {
      let d = t + c * ${THREADS}u;
      if (d < H) {
        var sum = 0.0;
        for (var r = 0u; r < count; r++) { sum += dl[r] * W[(v0 + r) * H + d]; }
        acc[c] += sum;
      }
    }
    workgroupBarrier();
  }
  for (var c = 0u; c < ${Math.ceil(s.hidden / THREADS)}u; c++) {
    let d = t + c * ${THREADS}u;
    if (d < H) { dh[n * H + d] = acc[c] * SCALE; }
  }
}
`;
}

export class LmHeadLogSoftmax {
  private constructor(
    readonly shape: LmHeadShape,
    private readonly fwd: Kernel,
    private readonly bwd: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: LmHeadShape): Promise<LmHeadLogSoftmax> {
    const [fwd, bwd] = await Promise.all([ctx.kernel(lmHeadForwardWgsl(shape), [shape.rows]), ctx.kernel(lmHeadBackwardWgsl(shape), [shape.rows])]);
    return new LmHeadLogSoftmax(shape, fwd, bwd);
  }

  /** logp [N] and entropy [N] of the target tokens; stats [N, 2] (lse, mean logit) for the backward. */
  forward(h: GPUBuffer, w: GPUBuffer, target: GPUBuffer, logp: GPUBuffer, entropy: GPUBuffer, stats: GPUBuffer): Dispatch {
    return this.fwd.dispatch(h, w, target, logp, entropy, stats);
  }

  /** dh [N, H] from dlogp [N] and dentropy [N]. */
  backward(h: GPUBuffer, w: GPUBuffer, target: GPUBuffer, stats: GPUBuffer, dlogp: GPUBuffer, dentropy: GPUBuffer, dh: GPUBuffer): Dispatch {
    return this.bwd.dispatch(h, w, target, stats, dlogp, dentropy, dh);
  }
}
