// Embedding rows for the decode loop: out[r] = E[rowToken[r]] with E [V, H] in f32 or packed f16 (the
// table the lm_head also reads when the embeddings are tied).
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid } from '../kernels/grid.js';
import { weightAccess, type WeightPrecision } from './linear.js';

export interface EmbedRowsShape {
  rows: number;
  vocab: number;
  hidden: number;
  precision: WeightPrecision;
}

export function embedRowsWgsl(s: EmbedRowsShape): string {
  const pairs = s.hidden / 2;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> rowToken: array<u32>;
${weightAccess('table', 1, s.precision, pairs)}
@group(0) @binding(2) var<storage, read_write> out: array<vec2f>;
${elementwiseEntry(s.rows * pairs)}
  let r = i / ${pairs}u;
  out[i] = table2(min(rowToken[r], ${s.vocab - 1}u), i % ${pairs}u);
}
`;
}

export class EmbedRows {
  private constructor(private readonly kernel: Kernel) {}

  static async create(ctx: GpuContext, shape: EmbedRowsShape): Promise<EmbedRows> {
    if (shape.hidden % 2 !== 0) throw new Error(`embedding: hidden size ${shape.hidden} must be even`);
    return new EmbedRows(await ctx.kernel(embedRowsWgsl(shape), elementwiseGrid(shape.rows * (shape.hidden / 2))));
  }

  dispatch(rowToken: GPUBuffer, table: GPUBuffer, out: GPUBuffer): Dispatch {
    return this.kernel.dispatch(rowToken, table, out);
  }
}
