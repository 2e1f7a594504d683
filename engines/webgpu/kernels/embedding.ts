// Embedding gather and its gradient: out[n] = E[ids[n]] for E [V, H]; dE[v] += Σ_{n: ids[n] = v} dout[n].
// The gradient runs one thread per column, over the tokens in order: repeated ids need no atomics and
// the sum order is fixed (deterministic).
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid } from './grid.js';

export interface EmbeddingShape {
  tokens: number;
  vocab: number;
  hidden: number;
}

export function embeddingGatherWgsl(s: EmbeddingShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${elementwiseEntry(s.tokens * s.hidden)}
  let n = i / ${s.hidden}u;
  let d = i % ${s.hidden}u;
  out[i] = table[min(ids[n], ${s.vocab - 1}u) * ${s.hidden}u + d];
}
`;
}

export function embeddingGradWgsl(s: EmbeddingShape): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dtable: array<f32>;
${elementwiseEntry(s.hidden)}
  for (var n = 0u; n < ${s.tokens}u; n++) {
    let row = min(ids[n], ${s.vocab - 1}u);
    dtable[row * ${s.hidden}u + i] += dout[n * ${s.hidden}u + i];
  }
}
`;
}

export class Embedding {
  private constructor(
    readonly shape: EmbeddingShape,
    private readonly gatherKernel: Kernel,
    private readonly gradKernel: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: EmbeddingShape): Promise<Embedding> {
    const [gather, grad] = await Promise.all([
      ctx.kernel(embeddingGatherWgsl(shape), elementwiseGrid(shape.tokens * shape.hidden)),
      ctx.kernel(embeddingGradWgsl(shape), elementwiseGrid(shape.hidden)),
    ]);
    return new Embedding(shape, gather, grad);
  }

  /** out [N, H] = table[ids] (ids past the vocabulary read its last row rather than out of bounds). */
  gather(ids: GPUBuffer, table: GPUBuffer, out: GPUBuffer): Dispatch {
    return this.gatherKernel.dispatch(ids, table, out);
  }

  /** dtable [V, H] += scatter-add of dout [N, H] by ids. */
  grad(ids: GPUBuffer, dout: GPUBuffer, dtable: GPUBuffer): Dispatch {
    return this.gradKernel.dispatch(ids, dout, dtable);
  }
}
