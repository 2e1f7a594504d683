// Attention of the decode loop over a KV cache that stays on the GPU: slots × positions, written in place.
// Row r of a launch is token `rowPos[r]` of the sequence in cache slot `rowSlot[r]` (a decode step: one row
// per slot; a prefill: a chunk of one prompt's tokens, all in one slot). Two kernels per layer:
//  - `qkRopeCache`: per row and head of the fused q|k|v projection output, optional q/k RMSNorm (Qwen3),
//    RoPE at the row's position (cos/sin tables made on the host in float32, as transformers does), q
//    rotated in place, k and v written to the layer's cache at [slot, pos] (layout [slot, pos, kvHeads·D],
//    so one prompt's prefix is one contiguous range, copied whole when G completions share it);
//  - `cacheAttention`: per row and head, softmax(q·Kᵀ/√D)·V over positions [start, pos] of its slot,
//    streamed in blocks with a running max (flash-decoding, no score matrix), GQA by head group.
// A row whose slot is NO_SLOT (padding of a prefill chunk) writes nothing to the cache.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

export const NO_SLOT = 0xffffffff;
const BLOCK = 64;

export interface CacheAttentionShape {
  rows: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Positions per cache slot. */
  maxLength: number;
  /** Sliding window (Mistral): attend to at most this many positions back, including the current one. */
  window?: number;
  /** q/k RMSNorm per head before RoPE (Qwen3), with this epsilon. */
  qkNormEps?: number;
}

export function qkRopeCacheWgsl(s: CacheAttentionShape): string {
  const D = s.headDim;
  const half = D / 2;
  const width = (s.heads + 2 * s.kvHeads) * D;
  const kvWidth = s.kvHeads * D;
  const norm = s.qkNormEps !== undefined;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> rowSlot: array<u32>;
@group(0) @binding(1) var<storage, read> rowPos: array<u32>;
@group(0) @binding(2) var<storage, read> cosTable: array<f32>;
@group(0) @binding(3) var<storage, read> sinTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(5) var<storage, read_write> cacheK: array<f32>;
@group(0) @binding(6) var<storage, read_write> cacheV: array<f32>;
${norm ? '@group(0) @binding(7) var<storage, read> qNorm: array<f32>;\n@group(0) @binding(8) var<storage, read> kNorm: array<f32>;' : ''}
var<workgroup> red: array<f32, ${half}>;
@compute @workgroup_size(${half})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = wg.x;
  let head = wg.y;
  let slot = rowSlot[r];
  let pos = min(rowPos[r], ${s.maxLength - 1}u);
  let base = r * ${width}u + head * ${D}u;
  var x1 = qkv[base + t];
  var x2 = qkv[base + t + ${half}u];
  let cacheAt = (slot * ${s.maxLength}u + pos) * ${kvWidth}u;
  if (head >= ${s.heads + s.kvHeads}u) {
    if (slot != ${NO_SLOT}u && rowPos[r] < ${s.maxLength}u) {
      let kv = (head - ${s.heads + s.kvHeads}u) * ${D}u;
      cacheV[cacheAt + kv + t] = x1;
      cacheV[cacheAt + kv + t + ${half}u] = x2;
    }
    return;
  }
  ${
    norm
      ? `red[t] = x1 * x1 + x2 * x2;
  workgroupBarrier();
  var ss = 0.0;
  for (var i = 0u; i < ${half}u; i++) { ss += red[i]; }
  let rstd = inverseSqrt(ss / ${D}.0 + ${s.qkNormEps!.toExponential()});
  if (head < ${s.heads}u) { x1 = qNorm[t] * (x1 * rstd); x2 = qNorm[t + ${half}u] * (x2 * rstd); }
  else { x1 = kNorm[t] * (x1 * rstd); x2 = kNorm[t + ${half}u] * (x2 * rstd); }`
      : ''
  }
  let c = cosTable[pos * ${half}u + t];
  let sn = sinTable[pos * ${half}u + t];
  let y1 = x1 * c - x2 * sn;
  let y2 = x2 * c + x1 * sn;
  if (head < ${s.heads}u) {
    qkv[base + t] = y1;
    qkv[base + t + ${half}u] = y2;
  } else if (slot != ${NO_SLOT}u && rowPos[r] < ${s.maxLength}u) {
    let kv = (head - ${s.heads}u) * ${D}u;
    cacheK[cacheAt + kv + t] = y1;
    cacheK[cacheAt + kv + t + ${half}u] = y2;
  }
}
`;
}

export function cacheAttentionWgsl(s: CacheAttentionShape): string {
  const D = s.headDim;
  const width = (s.heads + 2 * s.kvHeads) * D;
  const kvWidth = s.kvHeads * D;
  const group = s.heads / s.kvHeads;
  const perThread = Math.ceil(D / BLOCK);
  const accs = Array.from({ length: perThread }, (_, i) => i);
  const start = s.window ? `select(0u, pos + 1u - ${s.window}u, pos + 1u > ${s.window}u)` : '0u';
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> rowSlot: array<u32>;
@group(0) @binding(1) var<storage, read> rowPos: array<u32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> cacheK: array<f32>;
@group(0) @binding(4) var<storage, read> cacheV: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
var<workgroup> qs: array<f32, ${D}>;
var<workgroup> sc: array<f32, ${BLOCK}>;
@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = wg.x;
  let head = wg.y;
  let slot = rowSlot[r];
  if (slot == ${NO_SLOT}u) { return; }
  let pos = min(rowPos[r], ${s.maxLength - 1}u);
  let kvOffset = (head / ${group}u) * ${D}u;
  let slotBase = slot * ${s.maxLength}u * ${kvWidth}u + kvOffset;
  for (var d = t; d < ${D}u; d += ${BLOCK}u) { qs[d] = qkv[r * ${width}u + head * ${D}u + d] * ${1 / Math.sqrt(D)}; }
  workgroupBarrier();
  var m = -3.0e38;
  var l = 0.0;
  ${accs.map((i) => `var acc${i} = 0.0;`).join(' ')}
  let first = ${start};
  for (var p0 = first - first % ${BLOCK}u; p0 <= pos; p0 += ${BLOCK}u) {
    let p = p0 + t;
    var score = -3.0e38;
    if (p >= first && p <= pos) {
      let kb = slotBase + p * ${kvWidth}u;
      var dotqk = 0.0;
      for (var d = 0u; d < ${D}u; d++) { dotqk += qs[d] * cacheK[kb + d]; }
      score = dotqk;
    }
    sc[t] = score;
    workgroupBarrier();
    var blockMax = m;
    for (var i = 0u; i < ${BLOCK}u; i++) { blockMax = max(blockMax, sc[i]); }
    workgroupBarrier();
    sc[t] = select(0.0, exp(score - blockMax), p >= first && p <= pos);
    workgroupBarrier();
    let correction = exp(m - blockMax);
    m = blockMax;
    var blockSum = 0.0;
    for (var i = 0u; i < ${BLOCK}u; i++) { blockSum += sc[i]; }
    l = l * correction + blockSum;
    let count = min(${BLOCK}u, pos + 1u - p0);
    ${accs
      .map(
        (i) => `{
      let d = t + ${i * BLOCK}u;
      var a = acc${i} * correction;
      if (d < ${D}u) { for (var i = 0u; i < count; i++) { a += sc[i] * cacheV[slotBase + (p0 + i) * ${kvWidth}u + d]; } }
      acc${i} = a;
    }`,
      )
      .join('\n    ')}
    workgroupBarrier();
  }
  ${accs.map((i) => `if (t + ${i * BLOCK}u < ${D}u) { out[r * ${s.heads * D}u + head * ${D}u + t + ${i * BLOCK}u] = acc${i} / l; }`).join('\n  ')}
}
`;
}

export class CacheAttention {
  private constructor(
    readonly shape: CacheAttentionShape,
    private readonly ropeKernel: Kernel,
    private readonly attendKernel: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: CacheAttentionShape): Promise<CacheAttention> {
    if (shape.heads % shape.kvHeads !== 0) throw new Error(`attention: ${shape.heads} heads are not a multiple of ${shape.kvHeads} kv heads`);
    if (shape.headDim % 2 !== 0 || shape.headDim > 512) throw new Error(`attention: head dimension ${shape.headDim} must be even and at most 512`);
    const [rope, attend] = await Promise.all([
      ctx.kernel(qkRopeCacheWgsl(shape), [shape.rows, shape.heads + 2 * shape.kvHeads]),
      ctx.kernel(cacheAttentionWgsl(shape), [shape.rows, shape.heads]),
    ]);
    return new CacheAttention(shape, rope, attend);
  }

  /** RoPE on q (in place in `qkv`) and k, k and v into the cache; qkNorm = [qNorm, kNorm] weights where the shape has them. */
  qkRopeCache(rows: { slot: GPUBuffer; pos: GPUBuffer }, rope: { cos: GPUBuffer; sin: GPUBuffer }, qkv: GPUBuffer, cache: { k: GPUBuffer; v: GPUBuffer }, qkNorm?: [GPUBuffer, GPUBuffer]): Dispatch {
    const buffers = [rows.slot, rows.pos, rope.cos, rope.sin, qkv, cache.k, cache.v];
    if (this.shape.qkNormEps !== undefined) {
      if (!qkNorm) throw new Error('attention: the shape has q/k norms but no weights were given');
      buffers.push(...qkNorm);
    }
    return this.ropeKernel.dispatch(...buffers);
  }

  /** out [rows, heads·D] = attention of each row's q over its slot's cached keys and values. */
  attend(rows: { slot: GPUBuffer; pos: GPUBuffer }, qkv: GPUBuffer, cache: { k: GPUBuffer; v: GPUBuffer }, out: GPUBuffer): Dispatch {
    return this.attendKernel.dispatch(rows.slot, rows.pos, qkv, cache.k, cache.v, out);
  }
}
