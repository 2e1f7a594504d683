// Rotary position embedding in place of transformers' float32 computation, for x [T, H, Dh] (token-
// major; q or k of T tokens): with half = Dh/2, for i < half
//   y[i] = x[i]·cos − x[i+half]·sin,   y[i+half] = x[i+half]·cos + x[i]·sin,
// cos/sin of position[t]·inv_freq[i]. The backward is the inverse rotation (sin negated). Angles come
// from a host table built like transformers' (float32 angle, then cos/sin), so GPU cos/sin accuracy at
// large angles never matters; inv_freq, with linear or llama3 scaling, from core's ropeInverseFrequencies.
import { ropeInverseFrequencies } from '../../../core/llm/rope.js';
import type { ModelConfig } from '../../../core/llm/config.js';
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid } from './grid.js';

export interface RopeShape {
  tokens: number;
  heads: number;
  headDim: number;
}

/** cos and sin [positions, headDim/2] as transformers computes them: f32 angle p·inv_freq, then cos/sin. */
export function ropeTable(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>, positions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(config);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export function ropeWgsl(s: RopeShape, inverse: boolean): string {
  if (s.headDim % 2) throw new Error(`rope: head dimension ${s.headDim} is odd`);
  const half = s.headDim / 2;
  const n = s.tokens * s.heads * half;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> cosTable: array<f32>;
@group(0) @binding(3) var<storage, read> sinTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
const HALF = ${half}u;
const HEADS = ${s.heads}u;
${elementwiseEntry(n)}
  let th = i / HALF;
  let j = i % HALF;
  let t = th / HEADS;
  let row = th * ${s.headDim}u;
  let p = positions[t];
  let c = cosTable[p * HALF + j];
  let sn = ${inverse ? '-' : ''}sinTable[p * HALF + j];
  let a = x[row + j];
  let b = x[row + j + HALF];
  y[row + j] = a * c - b * sn;
  y[row + j + HALF] = b * c + a * sn;
}
`;
}

export class Rope {
  private constructor(
    readonly shape: RopeShape,
    private readonly fwd: Kernel,
    private readonly bwd: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: RopeShape): Promise<Rope> {
    const grid = elementwiseGrid((shape.tokens * shape.heads * shape.headDim) / 2);
    const [fwd, bwd] = await Promise.all([ctx.kernel(ropeWgsl(shape, false), grid), ctx.kernel(ropeWgsl(shape, true), grid)]);
    return new Rope(shape, fwd, bwd);
  }

  /** y = rope(x) at positions [T] (u32) with the tables of ropeTable (y may not alias x). */
  forward(x: GPUBuffer, positions: GPUBuffer, cos: GPUBuffer, sin: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.fwd.dispatch(x, positions, cos, sin, y);
  }

  /** dx = ropeᵀ(dy): the inverse rotation. */
  backward(dy: GPUBuffer, positions: GPUBuffer, cos: GPUBuffer, sin: GPUBuffer, dx: GPUBuffer): Dispatch {
    return this.bwd.dispatch(dy, positions, cos, sin, dx);
  }
}
