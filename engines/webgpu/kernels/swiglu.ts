// SwiGLU, the Llama MLP's gate: h = silu(g) ⊙ u, silu(g) = g·σ(g). Backward from dh:
//   du = dh ⊙ silu(g),   dg = dh ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))).
// One thread per element.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

const THREADS = 256;

const sigmoid = `fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }`;

export function swigluForwardWgsl(n: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
${sigmoid}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.y * nw.x * ${THREADS}u + id.x;
  if (i >= ${n}u) { return; }
  let gv = g[i];
  h[i] = gv * sigmoid(gv) * u[i];
}
`;
}

export function swigluBackwardWgsl(n: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> dh: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> dg: array<f32>;
@group(0) @binding(4) var<storage, read_write> du: array<f32>;
${sigmoid}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.y * nw.x * ${THREADS}u + id.x;
  if (i >= ${n}u) { return; }
  let gv = g[i];
  let s = sigmoid(gv);
  du[i] = dh[i] * gv * s;
  dg[i] = dh[i] * u[i] * s * (1.0 + gv * (1.0 - s));
}
`;
}

/** A 1-D launch of n threads as a 2-D grid (at most 65535 workgroups a dimension). */
export function elementwiseGrid(n: number, threads = THREADS): [number, number] {
  const groups = Math.ceil(n / threads);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}

export class SwiGlu {
  private constructor(
    readonly size: number,
    private readonly fwd: Kernel,
    private readonly bwd: Kernel,
  ) {}

  static async create(ctx: GpuContext, size: number): Promise<SwiGlu> {
    const grid = elementwiseGrid(size);
    const [fwd, bwd] = await Promise.all([ctx.kernel(swigluForwardWgsl(size), grid), ctx.kernel(swigluBackwardWgsl(size), grid)]);
    return new SwiGlu(size, fwd, bwd);
  }

  forward(g: GPUBuffer, u: GPUBuffer, h: GPUBuffer): Dispatch {
    return this.fwd.dispatch(g, u, h);
  }

  backward(dh: GPUBuffer, g: GPUBuffer, u: GPUBuffer, dg: GPUBuffer, du: GPUBuffer): Dispatch {
    return this.bwd.dispatch(dh, g, u, dg, du);
  }
}
