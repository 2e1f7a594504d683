// SwiGLU, the Llama MLP's gate: h = silu(g) ⊙ u, silu(g) = g·σ(g). Backward from dh:
//   du = dh ⊙ silu(g),   dg = dh ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))).
// One thread per element.
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid } from './grid.js';

const sigmoid = `fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }`;

export function swigluForwardWgsl(n: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
${sigmoid}
${elementwiseEntry(n)}
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
${elementwiseEntry(n)}
  let gv = g[i];
  let s = sigmoid(gv);
  du[i] = dh[i] * gv * s;
  dg[i] = dh[i] * u[i] * s * (1.0 + gv * (1.0 - s));
}
`;
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
