// Causal self-attention with a key padding mask and grouped-query heads, forward and backward, flash-
// style: no [heads, T, T] tensor is ever stored. The forward keeps only the log-sum-exp of each query
// row; the backward recomputes the probabilities from it.
//   q [B, T, HQ, D], k and v [B, T, HKV, D] (token-major, as the projections write them), valid [B, T]
//   (u32, 1 for a real token). Query i attends to key j iff j ≤ i and valid[b, j]; query head h reads
//   key/value head h / (HQ / HKV). A row with no key to attend to (left padding) outputs 0.
// Forward: one thread per query row with an online softmax over its keys. Backward: delta_i = dO_i·O_i
// and dq per query row; dk, dv per key row, summed over the query heads of its group and the queries
// that see it, so no atomics and a deterministic order.
// This is the correct, simple form (K/V re-read from cache by every row): the tiled tensor-core version
// is the next step; its spec is this one.
import type { Dispatch, GpuContext, Kernel } from '../device.js';
import { elementwiseEntry, elementwiseGrid, storageBindings } from './grid.js';

export interface AttentionShape {
  batch: number;
  tokens: number;
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

function constants(s: AttentionShape): string {
  if (s.queryHeads % s.kvHeads) throw new Error(`attention: ${s.queryHeads} query heads are not a multiple of ${s.kvHeads} key/value heads`);
  return `const B = ${s.batch}u;
const T = ${s.tokens}u;
const HQ = ${s.queryHeads}u;
const HKV = ${s.kvHeads}u;
const D = ${s.headDim}u;
const G = ${s.queryHeads / s.kvHeads}u;
const SCALE = ${1 / Math.sqrt(s.headDim)};
const NONE = -1e30;
fn qRow(b: u32, i: u32, h: u32) -> u32 { return ((b * T + i) * HQ + h) * D; }
fn kvRow(b: u32, j: u32, kh: u32) -> u32 { return ((b * T + j) * HKV + kh) * D; }`;
}

/** Entry of the one-thread-per-query-row kernels: sequence b, query head h, position row, offset qo. */
function perQueryRow(s: AttentionShape): string {
  return `${elementwiseEntry(s.batch * s.queryHeads * s.tokens, 64)}
  let row = i % T;
  let h = (i / T) % HQ;
  let b = i / (T * HQ);
  let qo = qRow(b, row, h);`;
}

export function attentionForwardWgsl(s: AttentionShape): string {
  return /* wgsl */ `${storageBindings(['q', 'k', 'v', 'valid:u32'], ['o', 'lse'])}
${constants(s)}
${perQueryRow(s)}
  var qr: array<f32, ${s.headDim}>;
  for (var d = 0u; d < D; d++) { qr[d] = q[qo + d] * SCALE; }
  var acc: array<f32, ${s.headDim}>;
  var m = NONE;
  var l = 0.0;
  for (var j = 0u; j <= row; j++) {
    if (valid[b * T + j] == 0u) { continue; }
    let ko = kvRow(b, j, h / G);
    var sc = 0.0;
    for (var d = 0u; d < D; d++) { sc += qr[d] * k[ko + d]; }
    let mNew = max(m, sc);
    let corr = exp(m - mNew);
    let p = exp(sc - mNew);
    l = l * corr + p;
    for (var d = 0u; d < D; d++) { acc[d] = acc[d] * corr + p * v[ko + d]; }
    m = mNew;
  }
  let lseIndex = (b * HQ + h) * T + row;
  if (l == 0.0) {
    for (var d = 0u; d < D; d++) { o[qo + d] = 0.0; }
    lse[lseIndex] = NONE;
    return;
  }
  for (var d = 0u; d < D; d++) { o[qo + d] = acc[d] / l; }
  lse[lseIndex] = m + log(l);
}
`;
}

/** delta_i = dO_i·O_i and dq_i = SCALE Σ_j p_ij (dO_i·v_j − delta_i) k_j, one thread per query row. */
export function attentionBackwardQueryWgsl(s: AttentionShape): string {
  return /* wgsl */ `${storageBindings(['q', 'k', 'v', 'valid:u32', 'o', 'lse', 'dO'], ['delta', 'dq'])}
${constants(s)}
${perQueryRow(s)}
  let li = (b * HQ + h) * T + row;
  var dlt = 0.0;
  for (var d = 0u; d < D; d++) { dlt += dO[qo + d] * o[qo + d]; }
  delta[li] = dlt;
  var acc: array<f32, ${s.headDim}>;
  let lr = lse[li];
  for (var j = 0u; j <= row; j++) {
    if (valid[b * T + j] == 0u) { continue; }
    let ko = kvRow(b, j, h / G);
    var sc = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < D; d++) { sc += q[qo + d] * k[ko + d]; dp += dO[qo + d] * v[ko + d]; }
    let ds = exp(sc * SCALE - lr) * (dp - dlt);
    for (var d = 0u; d < D; d++) { acc[d] += ds * k[ko + d]; }
  }
  for (var d = 0u; d < D; d++) { dq[qo + d] = acc[d] * SCALE; }
}
`;
}

/** dv_j = Σ p_ij dO_i and dk_j = SCALE Σ p_ij (dO_i·v_j − delta_i) q_i over the group's query heads and
 *  the queries i ≥ j, one thread per key row. */
export function attentionBackwardKeyWgsl(s: AttentionShape): string {
  return /* wgsl */ `${storageBindings(['q', 'k', 'v', 'valid:u32', 'lse', 'dO', 'delta'], ['dk', 'dv'])}
${constants(s)}
${elementwiseEntry(s.batch * s.kvHeads * s.tokens, 64)}
  let j = i % T;
  let kh = (i / T) % HKV;
  let b = i / (T * HKV);
  let ko = kvRow(b, j, kh);
  var dka: array<f32, ${s.headDim}>;
  var dva: array<f32, ${s.headDim}>;
  if (valid[b * T + j] != 0u) {
    for (var g = 0u; g < G; g++) {
      let h = kh * G + g;
      for (var row = j; row < T; row++) {
        let qo = qRow(b, row, h);
        let li = (b * HQ + h) * T + row;
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) { sc += q[qo + d] * k[ko + d]; dp += dO[qo + d] * v[ko + d]; }
        let p = exp(sc * SCALE - lse[li]);
        let ds = p * (dp - delta[li]);
        for (var d = 0u; d < D; d++) { dva[d] += p * dO[qo + d]; dka[d] += ds * q[qo + d]; }
      }
    }
  }
  for (var d = 0u; d < D; d++) { dk[ko + d] = dka[d] * SCALE; dv[ko + d] = dva[d]; }
}
`;
}

export class Attention {
  private constructor(
    readonly shape: AttentionShape,
    private readonly fwd: Kernel,
    private readonly bwdQuery: Kernel,
    private readonly bwdKey: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: AttentionShape): Promise<Attention> {
    const queryRows = elementwiseGrid(shape.batch * shape.queryHeads * shape.tokens, 64);
    const keyRows = elementwiseGrid(shape.batch * shape.kvHeads * shape.tokens, 64);
    const [fwd, bwdQuery, bwdKey] = await Promise.all([
      ctx.kernel(attentionForwardWgsl(shape), queryRows),
      ctx.kernel(attentionBackwardQueryWgsl(shape), queryRows),
      ctx.kernel(attentionBackwardKeyWgsl(shape), keyRows),
    ]);
    return new Attention(shape, fwd, bwdQuery, bwdKey);
  }

  /** o [B, T, HQ, D] and the row log-sum-exp lse [B, HQ, T] (all the backward keeps). */
  forward(q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, valid: GPUBuffer, o: GPUBuffer, lse: GPUBuffer): Dispatch {
    return this.fwd.dispatch(q, k, v, valid, o, lse);
  }

  /** dq, dk, dv from dO; `delta` [B, HQ, T] is scratch written by the first launch, read by the second. */
  backward(
    t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; valid: GPUBuffer; o: GPUBuffer; lse: GPUBuffer; dO: GPUBuffer; delta: GPUBuffer; dq: GPUBuffer; dk: GPUBuffer; dv: GPUBuffer },
  ): Dispatch[] {
    return [
      this.bwdQuery.dispatch(t.q, t.k, t.v, t.valid, t.o, t.lse, t.dO, t.delta, t.dq),
      this.bwdKey.dispatch(t.q, t.k, t.v, t.valid, t.lse, t.dO, t.delta, t.dk, t.dv),
    ];
  }
}
