// The projection of the decode loop: y[r, n] = Σ_k x[r, k]·W[n, k] (+ bias) (+ LoRA) for a few rows r (the
// sequences of one decode step, or a chunk of prompt tokens), W in the checkpoint's [out, in] layout, f32
// or f16 (f16 read as packed pairs through unpack2x16float, so no shader-f16 is needed). A GEMV, not a
// GEMM: a decode step is bound by reading the weights, so each workgroup reads TN weight rows once for RT
// rows of x, its 64 threads splitting k, and reduces in workgroup memory.
// Epilogues, so a layer needs few dispatches: `store`; `residual` (out += y: o_proj and down_proj add
// into the hidden state in place); `swiglu` (weights interleaved gate/up row by row: out[r, n/2] =
// silu(gate)·up). LoRA: u = x·Aᵀ comes from a `store` launch of this kernel on the concatenated A's; the
// epilogue adds scale·Σ_j u[r, off(n) + j]·B[n, j], off(n) from the fused projections' segments.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

export type WeightPrecision = 'f32' | 'f16';
export type LinearEpilogue = 'store' | 'residual' | 'swiglu';

const THREADS = 64;
/** Outputs per workgroup (even, so a swiglu gate/up pair never straddles two workgroups). */
const TN = 4;
/** Rows of x per workgroup: the weights are read once per RT rows. */
const RT = 4;

export interface LinearShape {
  rows: number;
  /** Input features (even). */
  inFeatures: number;
  /** Output features (weight rows). */
  outFeatures: number;
  precision: WeightPrecision;
  epilogue: LinearEpilogue;
  bias?: boolean;
  /** LoRA on the fly: rank and, per fused projection, where its rows end and where its u columns start. */
  lora?: { rank: number; uWidth: number; segments: { end: number; uOffset: number }[] } | { rank: number; uWidth: number; interleaved: true };
}

/** WGSL for a weight binding and `w2(n, kp)`: W[n, 2kp..2kp+1] as a vec2f. */
export function weightAccess(name: string, binding: number, precision: WeightPrecision, rowPairs: number): string {
  if (precision === 'f32') {
    return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<vec2f>;
fn ${name}2(n: u32, kp: u32) -> vec2f { return ${name}[n * ${rowPairs}u + kp]; }`;
  }
  return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<u32>;
fn ${name}2(n: u32, kp: u32) -> vec2f { return unpack2x16float(${name}[n * ${rowPairs}u + kp]); }`;
}

export function linearWgsl(s: LinearShape): string {
  const K2 = s.inFeatures / 2;
  const N = s.outFeatures;
  if (!Number.isInteger(K2)) throw new Error(`linear: input features ${s.inFeatures} must be even`);
  if (s.epilogue === 'swiglu' && N % 2 !== 0) throw new Error('linear: swiglu needs interleaved gate/up rows');
  const outWidth = s.epilogue === 'swiglu' ? N / 2 : N;
  const acc: string[] = [];
  const products: string[] = [];
  for (let i = 0; i < RT; i++) {
    for (let j = 0; j < TN; j++) {
      acc.push(`a${i}_${j}`);
      products.push(`a${i}_${j} += dot(xr${i}, wr${j});`);
    }
  }
  const loads = [
    ...Array.from({ length: TN }, (_, j) => `let wr${j} = w2(min(n0 + ${j}u, ${N - 1}u), kp);`),
    ...Array.from({ length: RT }, (_, i) => `let xr${i} = x[min(r0 + ${i}u, ${s.rows - 1}u) * ${K2}u + kp];`),
    ...products,
  ];
  let bindings = 3;
  const extra: string[] = [];
  if (s.bias) extra.push(`@group(0) @binding(${bindings++}) var<storage, read> bias: array<f32>;`);
  if (s.lora) {
    extra.push(`@group(0) @binding(${bindings++}) var<storage, read> loraU: array<f32>;`);
    extra.push(`@group(0) @binding(${bindings++}) var<storage, read> loraB: array<f32>;`);
    extra.push(`struct LoraScale { scale: f32 }\n@group(0) @binding(${bindings++}) var<uniform> lora: LoraScale;`);
  }
  const uOffset = !s.lora
    ? ''
    : 'interleaved' in s.lora
      ? `(n % 2u) * ${s.lora.rank}u`
      : s.lora.segments
        .slice(0, -1)
        .reduceRight((rest, seg) => `select(${rest}, ${seg.uOffset}u, n < ${seg.end}u)`, `${s.lora.segments[s.lora.segments.length - 1].uOffset}u`);
  const Q = RT * TN;
  const value = [
    `var y = 0.0;
      for (var i = 0u; i < ${THREADS}u; i++) { y += red[i * ${Q}u + q]; }`,
    s.bias ? 'y += bias[n];' : '',
    s.lora
      ? `{ let off = r * ${s.lora.uWidth}u + ${uOffset}; var l = 0.0;
      for (var j = 0u; j < ${s.lora.rank}u; j++) { l += loraU[off + j] * loraB[n * ${s.lora.rank}u + j]; }
      y += lora.scale * l; }`
      : '',
  ].join('\n      ');
  // One barrier, then thread q sums slot q over the threads serially: on lavapipe a tree reduction
  // (a barrier inside a loop) made this shader take ~30 s to compile; on a GPU the 64 adds are noise.
  const finish =
    s.epilogue === 'swiglu'
      ? `fin[q] = y;
    }
  }
  workgroupBarrier();
  if (q < ${Q}u && q % 2u == 0u) {
    let r = r0 + q / ${TN}u;
    let n = n0 + q % ${TN}u;
    if (r < ${s.rows}u && n < ${N}u) {
      let g = fin[q];
      out[r * ${outWidth}u + n / 2u] = g / (1.0 + exp(-g)) * fin[q + 1u];`
      : s.epilogue === 'residual'
        ? `out[r * ${outWidth}u + n] += y;`
        : `out[r * ${outWidth}u + n] = y;`;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> x: array<vec2f>;
${weightAccess('w', 1, s.precision, K2)}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${extra.join('\n')}
var<workgroup> red: array<f32, ${THREADS * Q}>;
${s.epilogue === 'swiglu' ? `var<workgroup> fin: array<f32, ${Q}>;` : ''}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r0 = wg.x * ${RT}u;
  let n0 = wg.y * ${TN}u;
  ${acc.map((a) => `var ${a} = 0.0;`).join(' ')}
  for (var kp = t; kp < ${K2}u; kp += ${THREADS}u) {
    ${loads.join('\n    ')}
  }
  ${acc.map((a, q) => `red[t * ${Q}u + ${q}u] = ${a};`).join(' ')}
  workgroupBarrier();
  let q = t;
  if (q < ${Q}u) {
    let r = r0 + q / ${TN}u;
    let n = n0 + q % ${TN}u;
    if (r < ${s.rows}u && n < ${N}u) {
      ${value}
      ${finish}
    }
  }
}
`;
}

/** The launch grid: row tiles along x (so the tiles reading the same weights run side by side), output tiles along y. */
export function linearGrid(s: LinearShape): [number, number] {
  const y = Math.ceil(s.outFeatures / TN);
  if (y > 65535) throw new Error(`linear: ${s.outFeatures} outputs exceed the launch grid`);
  return [Math.ceil(s.rows / RT), y];
}

export class Linear {
  private constructor(
    readonly shape: LinearShape,
    private readonly kernel: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: LinearShape): Promise<Linear> {
    return new Linear(shape, await ctx.kernel(linearWgsl(shape), linearGrid(shape)));
  }

  /** Buffers in binding order: x, w, out, then bias, then loraU, loraB, loraScale (uniform) as the shape has them. */
  dispatch(x: GPUBuffer, w: GPUBuffer, out: GPUBuffer, extra: { bias?: GPUBuffer; lora?: { u: GPUBuffer; B: GPUBuffer; scale: GPUBuffer } } = {}): Dispatch {
    const buffers = [x, w, out];
    if (this.shape.bias) buffers.push(need(extra.bias, 'bias'));
    if (this.shape.lora) {
      const l = need(extra.lora, 'lora');
      buffers.push(l.u, l.B, l.scale);
    }
    return this.kernel.dispatch(...buffers);
  }
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`linear: the shape has ${what} but no buffer was given`);
  return v;
}
