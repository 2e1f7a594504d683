// GEMM in WGSL: C[M,N] (+)= op(A)·op(B), batched over contiguous slices, in the three layouts a
// transformer's forward and backward need:
//   'nn'  A[M,K]·B[K,N]   forward x·W (weights stored [in, out])
//   'nt'  A[M,K]·B[N,K]ᵀ  forward against [out, in] weights; dX = dY·Wᵀ
//   'tn'  A[K,M]ᵀ·B[K,N]  weight gradients dW = Xᵀ·dY
// Two variants: 'subgroup-matrix' (f16 inputs on tensor cores through Dawn's experimental subgroup
// matrices, f32 accumulation; chosen where the adapter offers f16×f16→f32 16×16×16) and 'simt'
// (tiled shared-memory kernel; f16 inputs with f32 accumulation where tensor cores are absent, or f32
// inputs for exact mode). Shapes are compile-time constants: a training step's shapes are fixed, and
// constant bounds let the compiler unroll and strength-reduce the index arithmetic.
import type { Dispatch, GpuCapabilities, GpuContext, Kernel } from '../device.js';
import { hasF16TensorCores } from '../device.js';

export type GemmLayout = 'nn' | 'nt' | 'tn';
export type GemmVariant = 'simt' | 'subgroup-matrix';

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  layout: GemmLayout;
  /** Element type of A and B. */
  input: 'f16' | 'f32';
  /** C += product instead of C = product (gradient accumulation). */
  accumulate?: boolean;
  /** Independent products over contiguous slices of A, B and C (default 1). */
  batch?: number;
  /** Multiplies the product (not what C held before) by this factor. */
  scale?: number;
  /** A LoRA term added in the epilogue, so the adapter costs no extra pass over C: C += lora.scale ·
   *  U·Bᵀ with U [M, rank] (x·Aᵀ, from a thin GEMM before) at binding 3 and the adapter's B [N, rank]
   *  (PEFT's lora_B.weight layout) at binding 4, both f32. */
  lora?: { rank: number; scale: number };
}

/** Work split of the subgroup-matrix kernel: a BM×BN block per workgroup, split over SGM×SGN subgroups,
 *  BK of the reduction staged in workgroup memory per step. */
export interface SubgroupMatrixTiling {
  BM: number;
  BN: number;
  BK: number;
  SGM: number;
  SGN: number;
  /** Emit the fragment loads, products and stores as straight-line code on named variables instead of
   *  loops over arrays of subgroup matrices. On the H200 an MMA loop over register-held fragments in
   *  arrays ran at 4.3 TFLOP/s (the arrays appear to live in local memory); unrolled, the same 128×128×32
   *  tiling went from 33 to 86–106 TFLOP/s at 8192³ (engines/webgpu/NOTES.md), so it is the default. */
  unroll?: boolean;
}

export const DEFAULT_TILING: SubgroupMatrixTiling = { BM: 128, BN: 128, BK: 32, SGM: 2, SGN: 2, unroll: true };

const SIMT_TILE = 64;
const SIMT_BK = 16;

function describe(s: GemmShape): string {
  return `${s.layout} ${s.batch ?? 1}×${s.M}×${s.N}×${s.K} ${s.input}`;
}

function checkShape(s: GemmShape): void {
  for (const [name, v] of [['M', s.M], ['N', s.N], ['K', s.K], ['batch', s.batch ?? 1]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`gemm ${describe(s)}: ${name} must be a positive integer, got ${v}`);
  }
  if ((s.batch ?? 1) * Math.max(s.M * s.K, s.K * s.N, s.M * s.N) >= 2 ** 32) throw new Error(`gemm ${describe(s)}: more than 2^32 elements in one operand`);
  if (s.lora && (s.batch ?? 1) !== 1) throw new Error(`gemm ${describe(s)}: a LoRA epilogue takes one product, not a batch`);
}

/** Which operand dimension is contiguous in memory, per layout: A is [M,K] unless 'tn' ([K,M]); B is
 *  [K,N] unless 'nt' ([N,K]). */
function operandLayout(s: GemmShape) {
  const aRowMajorMK = s.layout !== 'tn';
  const bRowMajorKN = s.layout !== 'nt';
  return { aRowMajorMK, bRowMajorKN };
}

/** C is always f32: scalar f16 stores ran 1000× slower than f32 ones on lavapipe (17 s for 40×136),
 *  and the f16 consumers (next layer's input) are written by the elementwise kernels that follow. */
function storeExpr(s: GemmShape, index: string, value: string): string {
  const scaled = s.scale === undefined || s.scale === 1 ? value : `${value} * ${s.scale}`;
  const total = s.lora ? `${scaled} + loraTerm(r, c)` : scaled;
  return s.accumulate ? `C[${index}] += ${total};` : `C[${index}] = ${total};`;
}

/** Bindings and the per-entry function of the LoRA epilogue (row r, column c of C). */
function loraDeclarations(s: GemmShape): string {
  if (!s.lora) return '';
  return `@group(0) @binding(3) var<storage, read> loraU: array<f32>;
@group(0) @binding(4) var<storage, read> loraB: array<f32>;
fn loraTerm(r: u32, c: u32) -> f32 {
  var sum = 0.0;
  for (var j = 0u; j < ${s.lora.rank}u; j++) { sum += loraU[r * ${s.lora.rank}u + j] * loraB[c * ${s.lora.rank}u + j]; }
  return sum * ${s.lora.scale};
}`;
}

export function gemmSimtWgsl(s: GemmShape): string {
  checkShape(s);
  const { aRowMajorMK, bRowMajorKN } = operandLayout(s);
  const f16 = s.input === 'f16';
  const T = SIMT_TILE;
  const BK = SIMT_BK;
  // Consecutive threads read consecutive addresses of whichever dimension is contiguous.
  const loadA = aRowMajorMK
    ? `let kk = idx % ${BK}u; let m = idx / ${BK}u; let gm = row0 + m; let gk = k0 + kk;
      var va = 0.0; if (gm < M && gk < K) { va = f32(A[aBase + gm * K + gk]); } As[kk][m] = va;`
    : `let m = idx % ${T}u; let kk = idx / ${T}u; let gm = row0 + m; let gk = k0 + kk;
      var va = 0.0; if (gm < M && gk < K) { va = f32(A[aBase + gk * M + gm]); } As[kk][m] = va;`;
  const loadB = bRowMajorKN
    ? `let n = idx % ${T}u; let kb = idx / ${T}u; let gn = col0 + n; let gkb = k0 + kb;
      var vb = 0.0; if (gn < N && gkb < K) { vb = f32(B[bBase + gkb * N + gn]); } Bs[kb][n] = vb;`
    : `let kb = idx % ${BK}u; let n = idx / ${BK}u; let gn = col0 + n; let gkb = k0 + kb;
      var vb = 0.0; if (gn < N && gkb < K) { vb = f32(B[bBase + gn * K + gkb]); } Bs[kb][n] = vb;`;
  return /* wgsl */ `${f16 ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> A: array<${s.input}>;
@group(0) @binding(1) var<storage, read> B: array<${s.input}>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
${loraDeclarations(s)}
const M = ${s.M}u;
const N = ${s.N}u;
const K = ${s.K}u;
var<workgroup> As: array<array<f32, ${T}>, ${BK}>;
var<workgroup> Bs: array<array<f32, ${T}>, ${BK}>;

// 256 threads, a ${T}×${T} block of C; thread (ty, tx) owns rows ty+16i and columns tx+16j, so the
// shared-memory reads of a row of Bs are consecutive across the threads of a row.
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let row0 = wg.y * ${T}u;
  let col0 = wg.x * ${T}u;
  let aBase = wg.z * M * K;
  let bBase = wg.z * K * N;
  let cBase = wg.z * M * N;
  let ty = t / 16u;
  let tx = t % 16u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    for (var q = 0u; q < ${(T * BK) / 256}u; q++) {
      let idx = q * 256u + t;
      ${loadA}
      ${loadB}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      var b: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { b[j] = Bs[kk][tx + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        let a = As[kk][ty + 16u * i];
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a, b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + ty + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + tx + 16u * j;
      if (r < M && c < N) {
        let o = cBase + r * N + c;
        ${storeExpr(s, 'o', 'acc[i][j]')}
      }
    }
  }
}
`;
}

/** WGSL for one global→workgroup tile copy, split into a register prefetch (`load`) and a shared store
 *  (`store`) so the next tile's global reads overlap the current tile's matrix products. The tile is R
 *  rows × CC columns, contiguous along columns both in global memory (row length GC) and in `dst`. */
function tileCopy(o: {
  name: string;
  src: string;
  dst: string;
  base: string;
  R: number;
  CC: number;
  gr0: string;
  gc0: string;
  GR: string;
  GC: string;
  V: 1 | 4 | 8;
  threads: number;
}) {
  const perThread = (o.R * o.CC) / o.V / o.threads;
  const vecPerRow = o.CC / o.V;
  const regType = o.V === 1 ? 'f16' : o.V === 4 ? 'vec4<f16>' : 'vec4<u32>';
  const zero = o.V === 1 ? 'f16(0.0)' : o.V === 4 ? 'vec4<f16>()' : 'vec4<u32>()';
  const element = (e: number) => (o.V === 1 ? `${o.name}r[q]` : o.V === 4 ? `${o.name}r[q][${e}]` : `bitcast<vec2<f16>>(${o.name}r[q][${e >> 1}])[${e & 1}]`);
  const decl = `var ${o.name}r: array<${regType}, ${perThread}>;`;
  const coords = `let v = q * ${o.threads}u + t; let r = v / ${vecPerRow}u; let c = (v % ${vecPerRow}u) * ${o.V}u;`;
  const load = `for (var q = 0u; q < ${perThread}u; q++) {
      ${coords}
      let gr = ${o.gr0} + r; let gc = ${o.gc0} + c;
      if (gr < ${o.GR} && gc < ${o.GC}) { ${o.name}r[q] = ${o.src}[(${o.base} + gr * ${o.GC} + gc) / ${o.V}u]; } else { ${o.name}r[q] = ${zero}; }
    }`;
  const store = `for (var q = 0u; q < ${perThread}u; q++) {
      ${coords}
      let s = r * ${o.CC}u + c;
      ${Array.from({ length: o.V }, (_, e) => `${o.dst}[s + ${e}u] = ${element(e)};`).join(' ')}
    }`;
  return { decl, load, store, storageType: regType };
}

/** The widest vector load (8, 4 or 1 halves) that divides the contiguous length. */
function vectorWidth(contiguous: number): 1 | 4 | 8 {
  return contiguous % 8 === 0 ? 8 : contiguous % 4 === 0 ? 4 : 1;
}

export function gemmSubgroupMatrixWgsl(s: GemmShape, tiling: SubgroupMatrixTiling, subgroupSize: number): string {
  checkShape(s);
  if (s.input !== 'f16') throw new Error(`gemm ${describe(s)}: the subgroup-matrix variant takes f16 inputs`);
  const { BM, BN, BK, SGM, SGN } = tiling;
  const SM = BM / SGM;
  const SN = BN / SGN;
  const FM = SM / 16;
  const FN = SN / 16;
  const subgroups = SGM * SGN;
  const threads = subgroups * subgroupSize;
  const { aRowMajorMK, bRowMajorKN } = operandLayout(s);
  const VA = vectorWidth(aRowMajorMK ? s.K : s.M);
  const VB = vectorWidth(bRowMajorKN ? s.N : s.K);
  const bad = [
    [Number.isInteger(FM) && Number.isInteger(FN) && FM > 0 && FN > 0, 'BM/SGM and BN/SGN must be multiples of 16'],
    [BK % 16 === 0, 'BK must be a multiple of 16'],
    [((BM * BK) / VA) % threads === 0 && ((BN * BK) / VB) % threads === 0, 'tile copies must split evenly over the threads'],
    [threads <= 1024, 'at most 1024 threads a workgroup'],
  ].find(([ok]) => !ok);
  if (bad) throw new Error(`gemm ${describe(s)}: tiling ${JSON.stringify(tiling)}: ${bad[1]}`);
  const a = aRowMajorMK
    ? tileCopy({ name: 'a', src: 'A', dst: 'As', base: 'aBase', R: BM, CC: BK, gr0: 'row0', gc0: 'k0', GR: 'M', GC: 'K', V: VA, threads })
    : tileCopy({ name: 'a', src: 'A', dst: 'As', base: 'aBase', R: BK, CC: BM, gr0: 'k0', gc0: 'row0', GR: 'K', GC: 'M', V: VA, threads });
  const b = bRowMajorKN
    ? tileCopy({ name: 'b', src: 'B', dst: 'Bs', base: 'bBase', R: BK, CC: BN, gr0: 'k0', gc0: 'col0', GR: 'K', GC: 'N', V: VB, threads })
    : tileCopy({ name: 'b', src: 'B', dst: 'Bs', base: 'bBase', R: BN, CC: BK, gr0: 'col0', gc0: 'k0', GR: 'N', GC: 'K', V: VB, threads });
  // Fragments read from the staged tiles: a transposed operand is read column-major, so no transpose
  // is ever done by hand.
  const loadLeft = aRowMajorMK ? `(sr + i * 16u) * ${BK}u + kk, false, ${BK}u` : `kk * ${BM}u + sr + i * 16u, true, ${BM}u`;
  const loadRight = bRowMajorKN ? `kk * ${BN}u + sc + j * 16u, false, ${BN}u` : `(sc + j * 16u) * ${BK}u + kk, true, ${BK}u`;
  const direct = !s.accumulate && !s.lora && (s.scale ?? 1) === 1;
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const Rt = 'subgroup_matrix_right<f16, 16, 16>';
  const edgeStore = (i: string, j: string, frag: string) => `subgroupMatrixStore(&Cs, sg * 256u, ${frag}, false, 16u);
        workgroupBarrier();
        for (var e = lane; e < 256u; e += ${subgroupSize}u) {
          let r = row0 + sr + ${i} * 16u + e / 16u;
          let c = col0 + sc + ${j} * 16u + e % 16u;
          if (r < M && c < N) {
            let o = cBase + r * N + c;
            ${storeExpr(s, 'o', 'Cs[sg * 256u + e]')}
          }
        }
        workgroupBarrier();`;
  const directStore = (i: string, j: string, frag: string) => `subgroupMatrixStore(&C, cBase + (row0 + sr + ${i} * 16u) * N + col0 + sc + ${j} * 16u, ${frag}, false, N);`;
  const leftLoad = (i: string, kk: string) => `subgroupMatrixLoad<${L}>(&As, ${loadLeft.replaceAll('i * 16u', `${i} * 16u`).replaceAll('kk', kk)})`;
  const rightLoad = (j: string, kk: string) => `subgroupMatrixLoad<${Rt}>(&Bs, ${loadRight.replaceAll('j * 16u', `${j} * 16u`).replaceAll('kk', kk)})`;
  const pairs = Array.from({ length: FM * FN }, (_, f) => [Math.floor(f / FN), f % FN] as const);
  const m = tiling.unroll
    ? {
        declare: pairs.map(([i, j]) => `var acc_${i}_${j}: subgroup_matrix_result<f32, 16, 16>;`).join('\n  '),
        multiply: Array.from({ length: BK / 16 }, (_, step) => {
          const kk = `${step * 16}u`;
          const lines = [
            ...Array.from({ length: FM }, (_, i) => `let fa_${i} = ${leftLoad(`${i}u`, kk)};`),
            ...Array.from({ length: FN }, (_, j) => `let fb_${j} = ${rightLoad(`${j}u`, kk)};`),
            ...pairs.map(([i, j]) => `acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(fa_${i}, fb_${j}, acc_${i}_${j});`),
          ];
          return `    {\n      ${lines.join('\n      ')}\n    }`;
        }).join('\n'),
        storeDirect: pairs.map(([i, j]) => `    ${directStore(`${i}u`, `${j}u`, `acc_${i}_${j}`)}`).join('\n'),
        storeEdge: pairs.map(([i, j]) => `    {\n        ${edgeStore(`${i}u`, `${j}u`, `acc_${i}_${j}`)}\n    }`).join('\n'),
      }
    : {
        declare: `var acc: array<subgroup_matrix_result<f32, 16, 16>, ${FM * FN}>;`,
        multiply: `    for (var kk = 0u; kk < ${BK}u; kk += 16u) {
      var fa: array<${L}, ${FM}>;
      var fb: array<${Rt}, ${FN}>;
      for (var i = 0u; i < ${FM}u; i++) { fa[i] = ${leftLoad('i', 'kk')}; }
      for (var j = 0u; j < ${FN}u; j++) { fb[j] = ${rightLoad('j', 'kk')}; }
      for (var i = 0u; i < ${FM}u; i++) {
        for (var j = 0u; j < ${FN}u; j++) {
          acc[i * ${FN}u + j] = subgroupMatrixMultiplyAccumulate(fa[i], fb[j], acc[i * ${FN}u + j]);
        }
      }
    }`,
        storeDirect: `    for (var i = 0u; i < ${FM}u; i++) {
      for (var j = 0u; j < ${FN}u; j++) {
        ${directStore('i', 'j', `acc[i * ${FN}u + j]`)}
      }
    }`,
        // Edge blocks and accumulation: each fragment goes through this subgroup's 16×16 scratch,
        // then its lanes write the in-range entries.
        storeEdge: `    for (var i = 0u; i < ${FM}u; i++) {
      for (var j = 0u; j < ${FN}u; j++) {
        ${edgeStore('i', 'j', `acc[i * ${FN}u + j]`)}
      }
    }`,
      };
  return /* wgsl */ `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<${a.storageType}>;
@group(0) @binding(1) var<storage, read> B: array<${b.storageType}>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
${loraDeclarations(s)}
const M = ${s.M}u;
const N = ${s.N}u;
const K = ${s.K}u;
var<workgroup> As: array<f16, ${BM * BK}>;
var<workgroup> Bs: array<f16, ${BN * BK}>;
var<workgroup> Cs: array<f32, ${subgroups * 256}>;

// ${threads} threads = ${subgroups} subgroups of ${subgroupSize}; subgroup (sg / ${SGN}, sg % ${SGN}) owns a
// ${SM}×${SN} part of the workgroup's ${BM}×${BN} block as ${FM}×${FN} 16×16 f32 accumulators.
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  let aBase = wg.z * M * K;
  let bBase = wg.z * K * N;
  let cBase = wg.z * M * N;
  let sr = (sg / ${SGN}u) * ${SM}u;
  let sc = (sg % ${SGN}u) * ${SN}u;
  ${m.declare}
  ${a.decl}
  ${b.decl}
  var k0 = 0u;
  ${a.load}
  ${b.load}
  for (; k0 < K; k0 += ${BK}u) {
    workgroupBarrier();
    ${a.store}
    ${b.store}
    workgroupBarrier();
    if (k0 + ${BK}u < K) {
      let kNext = k0 + ${BK}u;
      {
        let k0 = kNext;
        ${a.load}
        ${b.load}
      }
    }
${m.multiply}
  }
  let interior = row0 + ${BM}u <= M && col0 + ${BN}u <= N;
  if (${direct} && interior) {
${m.storeDirect}
  } else {
${m.storeEdge}
  }
}
`;
}

/** The subgroup size the subgroup-matrix kernel can rely on (its thread count is subgroups × size), or
 *  0 where the adapter's subgroups vary in size. The subgroup index comes from @builtin(subgroup_id):
 *  matrix offsets must be subgroup-uniform, which t / 32 is not to the compiler's analysis. */
function fixedSubgroupSize(caps: GpuCapabilities): number {
  return caps.subgroupMinSize > 0 && caps.subgroupMinSize === caps.subgroupMaxSize ? caps.subgroupMinSize : 0;
}

/** Tensor cores for f16 inputs where offered (with a fixed subgroup size), SIMT otherwise. */
export function chooseGemmVariant(caps: GpuCapabilities, s: Pick<GemmShape, 'input'>): GemmVariant {
  return s.input === 'f16' && caps.subgroups && hasF16TensorCores(caps) && fixedSubgroupSize(caps) > 0 ? 'subgroup-matrix' : 'simt';
}

/** One GEMM of fixed shape on one device: its pipeline is compiled once; `dispatch(a, b, c)` returns
 *  the launch to record. */
export class Gemm {
  private constructor(
    readonly shape: GemmShape,
    readonly variant: GemmVariant,
    private readonly kernel: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: GemmShape, options: { variant?: GemmVariant; tiling?: SubgroupMatrixTiling } = {}): Promise<Gemm> {
    const variant = options.variant ?? chooseGemmVariant(ctx.caps, shape);
    const batch = shape.batch ?? 1;
    if (variant === 'subgroup-matrix') {
      const size = fixedSubgroupSize(ctx.caps);
      if (!ctx.caps.subgroups || !hasF16TensorCores(ctx.caps) || !size) throw new Error(`gemm ${describe(shape)}: this adapter (${ctx.caps.adapterDescription}) offers no f16 subgroup matrices`);
      const tiling = options.tiling ?? DEFAULT_TILING;
      const kernel = await ctx.kernel(gemmSubgroupMatrixWgsl(shape, tiling, size), [Math.ceil(shape.N / tiling.BN), Math.ceil(shape.M / tiling.BM), batch]);
      return new Gemm(shape, variant, kernel);
    }
    if (shape.input === 'f16' && !ctx.caps.shaderF16) throw new Error(`gemm ${describe(shape)}: this adapter has no shader-f16`);
    const kernel = await ctx.kernel(gemmSimtWgsl(shape), [Math.ceil(shape.N / SIMT_TILE), Math.ceil(shape.M / SIMT_TILE), batch]);
    return new Gemm(shape, variant, kernel);
  }

  /** C (+)= A·B; with a LoRA epilogue, `lora` gives U [M, rank] and the adapter's B [N, rank]. */
  dispatch(a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, lora?: { u: GPUBuffer; b: GPUBuffer }): Dispatch {
    if (!this.shape.lora !== !lora) throw new Error(`gemm ${describe(this.shape)}: LoRA buffers ${lora ? 'given to a product without' : 'missing for a product with'} a LoRA epilogue`);
    return lora ? this.kernel.dispatch(a, b, c, lora.u, lora.b) : this.kernel.dispatch(a, b, c);
  }
}
