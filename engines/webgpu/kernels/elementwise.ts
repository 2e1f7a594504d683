// The small element-wise steps between the big kernels of a decoder layer:
//   castF16   y = f16(x)            (activations into f16 GEMM operands; two halves packed per u32 store,
//                                    since scalar f16 stores ran ~1000× slower on lavapipe, see gemm.ts)
//   addInto   y += x                (residual streams, gradients meeting at a fork)
//   addBias   y[r, c] += bias[c]    (Qwen2's q/k/v biases)
//   gatherRows  y[n] = x[index[n]]   (0 where index[n] ≥ rows: a padding slot)
//   scatterRows y[index[n]] += x[n]  (its gradient; indices must be distinct, padding slots skipped)
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid, storageBindings } from './grid.js';

export function castF16Wgsl(n: number): string {
  if (n % 2) throw new Error(`castF16: ${n} values (must be even: halves are stored in pairs)`);
  return /* wgsl */ `${storageBindings(['x'], ['y:u32'])}
${elementwiseEntry(n / 2)}
  y[i] = pack2x16float(vec2f(x[2u * i], x[2u * i + 1u]));
}
`;
}

export function addIntoWgsl(n: number): string {
  return /* wgsl */ `${storageBindings(['x'], ['y'])}
${elementwiseEntry(n)}
  y[i] += x[i];
}
`;
}

export function addBiasWgsl(rows: number, cols: number): string {
  return /* wgsl */ `${storageBindings(['bias'], ['y'])}
${elementwiseEntry(rows * cols)}
  y[i] += bias[i % ${cols}u];
}
`;
}

export interface RowIndexShape {
  /** Rows of the indexed buffer. */
  rows: number;
  /** Entries of the index (rows of the compact buffer). */
  picked: number;
  width: number;
}

export function gatherRowsWgsl(s: RowIndexShape): string {
  return /* wgsl */ `${storageBindings(['index:u32', 'x'], ['y'])}
${elementwiseEntry(s.picked * s.width)}
  let r = index[i / ${s.width}u];
  if (r >= ${s.rows}u) { y[i] = 0.0; return; }
  y[i] = x[r * ${s.width}u + i % ${s.width}u];
}
`;
}

export function scatterRowsWgsl(s: RowIndexShape): string {
  return /* wgsl */ `${storageBindings(['index:u32', 'x'], ['y'])}
${elementwiseEntry(s.picked * s.width)}
  let r = index[i / ${s.width}u];
  if (r >= ${s.rows}u) { return; }
  y[r * ${s.width}u + i % ${s.width}u] += x[i];
}
`;
}

/** Picks rows of a [rows, width] buffer into a compact [picked, width] one, and adds gradients back. */
export class RowIndex {
  private constructor(
    readonly shape: RowIndexShape,
    private readonly gatherKernel: Kernel,
    private readonly scatterKernel: Kernel,
  ) {}
  static async create(ctx: GpuContext, shape: RowIndexShape): Promise<RowIndex> {
    const grid = elementwiseGrid(shape.picked * shape.width);
    const [g, s] = await Promise.all([ctx.kernel(gatherRowsWgsl(shape), grid), ctx.kernel(scatterRowsWgsl(shape), grid)]);
    return new RowIndex(shape, g, s);
  }
  gather(index: GPUBuffer, x: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.gatherKernel.dispatch(index, x, y);
  }
  /** y [rows, width] += x [picked, width] at the indexed rows. */
  scatter(index: GPUBuffer, x: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.scatterKernel.dispatch(index, x, y);
  }
}

/** y (f16, [n]) = x (f32, [n]); n even. */
export class CastF16 {
  private constructor(private readonly kernel: Kernel) {}
  static async create(ctx: GpuContext, n: number): Promise<CastF16> {
    return new CastF16(await ctx.kernel(castF16Wgsl(n), elementwiseGrid(n / 2)));
  }
  dispatch(x: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.kernel.dispatch(x, y);
  }
}

/** y += x over n values. */
export class AddInto {
  private constructor(private readonly kernel: Kernel) {}
  static async create(ctx: GpuContext, n: number): Promise<AddInto> {
    return new AddInto(await ctx.kernel(addIntoWgsl(n), elementwiseGrid(n)));
  }
  dispatch(x: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.kernel.dispatch(x, y);
  }
}

/** y [rows, cols] += bias [cols] on every row. */
export class AddBias {
  private constructor(private readonly kernel: Kernel) {}
  static async create(ctx: GpuContext, rows: number, cols: number): Promise<AddBias> {
    return new AddBias(await ctx.kernel(addBiasWgsl(rows, cols), elementwiseGrid(rows * cols)));
  }
  dispatch(bias: GPUBuffer, y: GPUBuffer): Dispatch {
    return this.kernel.dispatch(bias, y);
  }
}
