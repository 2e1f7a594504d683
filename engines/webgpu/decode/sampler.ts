// Next-token choice on the GPU, one workgroup per cache slot, over that slot's row of logits, as
// transformers' logits processors do it: repetition penalty → temperature → top-k → top-p → min-p, then a
// draw with the slot's own seed (a counter-based hash of (seed, tokens generated so far), so a sequence
// samples the same tokens whatever else shares the batch). No sort: top-k's threshold is the k-th largest
// tempered logit, found exactly by bisection on the float's ordered bits (32 counting passes); top-p's is
// the smallest logit whose strictly-larger mass is below p (32 mass passes). Ties at a threshold are kept,
// as transformers' `scores < kth_value` does.
// The recorded log-prob is of the distribution the token was drawn from (after penalty, temperature and
// truncation); greedy (temperature 0) records log_softmax(logits · lpScale), the unmodified logits.
// The kernel then advances the slot: token and position for the next step, the id and log-prob into the
// chunk read back every few steps, the seen-token bits, and `active` cleared on an eos id or at the length.
import type { Dispatch, GpuContext, Kernel } from '../device.js';

const THREADS = 256;

/** Words of per-slot state in `info`: */
export const INFO = { active: 0, generated: 1, maxNew: 2, seed0: 3, seed1: 4, written: 5, words: 8 } as const;

export interface SamplerShape {
  slots: number;
  vocab: number;
  /** Steps per read-back: the out arrays hold this many tokens per slot. */
  chunk: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  /** Scale of the recorded greedy log-probs (1 / logprobTemperature). */
  logprobScale: number;
  eosTokenIds: number[];
}

/** Words of the seen-token bit set per slot. */
export const seenWords = (vocab: number) => Math.ceil(vocab / 32);

const f32 = (v: number) => {
  const s = Math.fround(v).toString();
  return /[.eE]/.test(s) ? s : `${s}.0`;
};

/** Workgroup reductions in two levels (16 partials, then one thread): no barrier inside a loop, which on
 *  lavapipe multiplies shader compile time many-fold. */
function reduction(name: string, type: 'f32' | 'u32', op: (a: string, b: string) => string): string {
  const arr = type === 'f32' ? 'redF' : 'redU';
  return `fn ${name}(t: u32, v: ${type}) -> ${type} {
  ${arr}[t] = v;
  workgroupBarrier();
  if (t < 16u) {
    var a = ${arr}[t * 16u];
    for (var i = 1u; i < 16u; i++) { a = ${op('a', `${arr}[t * 16u + i]`)}; }
    ${arr}Part[t] = a;
  }
  workgroupBarrier();
  if (t == 0u) {
    var a = ${arr}Part[0];
    for (var i = 1u; i < 16u; i++) { a = ${op('a', `${arr}Part[i]`)}; }
    ${arr}Total = a;
  }
  return workgroupUniformLoad(&${arr}Total);
}`;
}

const REDUCE = /* wgsl */ `
var<workgroup> redF: array<f32, ${THREADS}>;
var<workgroup> redU: array<u32, ${THREADS}>;
var<workgroup> redFPart: array<f32, 16>;
var<workgroup> redUPart: array<u32, 16>;
var<workgroup> redFTotal: f32;
var<workgroup> redUTotal: u32;
${reduction('sumF', 'f32', (a, b) => `${a} + ${b}`)}
${reduction('maxF', 'f32', (a, b) => `max(${a}, ${b})`)}
${reduction('sumU', 'u32', (a, b) => `${a} + ${b}`)}
${reduction('minU', 'u32', (a, b) => `min(${a}, ${b})`)}
`;

export function samplerWgsl(s: SamplerShape): string {
  const V = s.vocab;
  const VW = seenWords(V);
  const greedy = s.temperature === 0;
  const penalty = s.repetitionPenalty !== 1;
  const topK = s.topK > 0 && s.topK < V;
  const topP = s.topP < 1;
  const minP = s.minP > 0;
  const CH = Math.ceil(V / THREADS);
  const eos = s.eosTokenIds.length ? s.eosTokenIds.map((id) => `id == ${id}u`).join(' || ') : 'false';
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> info: array<u32>;
@group(0) @binding(2) var<storage, read_write> token: array<u32>;
@group(0) @binding(3) var<storage, read_write> pos: array<u32>;
@group(0) @binding(4) var<storage, read_write> seen: array<u32>;
@group(0) @binding(5) var<storage, read_write> outIds: array<u32>;
@group(0) @binding(6) var<storage, read_write> outLogprobs: array<f32>;
${REDUCE}
var<workgroup> flag: u32;
var<workgroup> pick: array<f32, ${THREADS}>;
var<workgroup> chosen: u32;
var<workgroup> chosenId: u32;
var<workgroup> remaining: f32;

fn penalised(s: u32, i: u32) -> f32 {
  let v = logits[s * ${V}u + i];
  ${penalty ? `if ((seen[s * ${VW}u + i / 32u] & (1u << (i % 32u))) != 0u) { return select(v / ${f32(s.repetitionPenalty)}, v * ${f32(s.repetitionPenalty)}, v < 0.0); }` : ''}
  return v;
}
/** Order-preserving map of a float to u32: a < b ⇔ key(a) < key(b). */
fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn hash(v0: vec3u) -> vec3u {
  var v = v0 * 1664525u + 1013904223u;
  v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
  v ^= v >> vec3u(16u);
  v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
  return v;
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  if (t == 0u) { flag = info[s * ${INFO.words}u + ${INFO.active}u]; }
  if (workgroupUniformLoad(&flag) == 0u) { return; }
  let row = s * ${V}u;
  var id = 0u;
  var logprob = 0.0;
  ${
    greedy
      ? `// Greedy: argmax of the penalised logits, lowest index on ties.
  var best = -3.4e38;
  var bestId = ${V}u;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { let v = penalised(s, i); if (v > best) { best = v; bestId = i; } }
  let top = maxF(t, best);
  id = minU(t, select(${V}u, bestId, best == top));
  var rawMax = -3.4e38;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { rawMax = max(rawMax, logits[row + i] * ${f32(s.logprobScale)}); }
  let m = maxF(t, rawMax);
  var z = 0.0;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { z += exp(logits[row + i] * ${f32(s.logprobScale)} - m); }
  let total = sumF(t, z);
  logprob = logits[row + min(id, ${V - 1}u)] * ${f32(s.logprobScale)} - m - log(total);`
      : `let invT = ${f32(1 / s.temperature)};
  var localMax = -3.4e38;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { localMax = max(localMax, penalised(s, i) * invT); }
  let m = maxF(t, localMax);
  // Tokens kept have key(tempered logit) >= threshold.
  var threshold = 0u;
  ${
    topK
      ? `// k-th largest tempered logit: the largest key with at least k keys at or above it.
  for (var bit = 31i; bit >= 0i; bit--) {
    let cand = threshold | (1u << u32(bit));
    var count = 0u;
    for (var i = t; i < ${V}u; i += ${THREADS}u) { count += select(0u, 1u, key(penalised(s, i) * invT) >= cand); }
    if (sumU(t, count) >= ${s.topK}u) { threshold = cand; }
  }`
      : ''
  }
  ${
    topP
      ? `// Keep a token while the mass strictly above it is below p·(mass kept so far): the largest key whose
  // strictly-larger mass is still ≥ p·total is the last one cut; keep keys above it.
  var kept = 0.0;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { let x = penalised(s, i) * invT; if (key(x) >= threshold) { kept += exp(x - m); } }
  let mass = ${f32(s.topP)} * sumF(t, kept);
  var cut = 0u;
  for (var bit = 31i; bit >= 0i; bit--) {
    let cand = cut | (1u << u32(bit));
    var above = 0.0;
    for (var i = t; i < ${V}u; i += ${THREADS}u) { let x = penalised(s, i) * invT; let k = key(x); if (k >= threshold && k > cand) { above += exp(x - m); } }
    if (sumF(t, above) >= mass) { cut = cand; }
  }
  threshold = max(threshold, cut + 1u);`
      : ''
  }
  // Weights relative to the top token (weight 1), so min-p compares with min_p itself.
  let lo = t * ${CH}u;
  let hi = min(lo + ${CH}u, ${V}u);
  var z = 0.0;
  var lastKept = 0u;
  for (var i = lo; i < hi; i++) {
    let x = penalised(s, i) * invT;
    let w = exp(x - m);
    if (key(x) >= threshold${minP ? ` && w >= ${f32(s.minP)}` : ''}) { z += w; lastKept = i + 1u; }
  }
  pick[t] = z;
  let total = sumF(t, z);
  let lastAny = maxF(t, f32(lastKept));
  let info0 = s * ${INFO.words}u;
  if (t == 0u) {
    let h = hash(vec3u(info[info0 + ${INFO.seed0}u], info[info0 + ${INFO.seed1}u], info[info0 + ${INFO.generated}u]));
    var u = f32(h.x >> 8u) / 16777216.0 * total;
    var owner = ${THREADS}u;
    for (var k = 0u; k < ${THREADS}u; k++) {
      if (pick[k] > 0.0 && u < pick[k]) { owner = k; break; }
      u -= pick[k];
    }
    chosen = owner;
    remaining = u;
  }
  let owner = workgroupUniformLoad(&chosen);
  if (t == owner) {
    var u = remaining;
    var found = u32(lastAny) - 1u;
    for (var i = lo; i < hi; i++) {
      let x = penalised(s, i) * invT;
      let w = exp(x - m);
      if (key(x) >= threshold${minP ? ` && w >= ${f32(s.minP)}` : ''}) {
        if (u < w) { found = i; break; }
        u -= w;
      }
    }
    chosenId = found;
  }
  if (owner == ${THREADS}u && t == 0u) { chosenId = u32(lastAny) - 1u; }
  id = workgroupUniformLoad(&chosenId);
  logprob = penalised(s, id) * invT - m - log(total);`
  }
  if (t == 0u) {
    let i0 = s * ${INFO.words}u;
    let written = info[i0 + ${INFO.written}u];
    outIds[s * ${s.chunk}u + min(written, ${s.chunk - 1}u)] = id;
    outLogprobs[s * ${s.chunk}u + min(written, ${s.chunk - 1}u)] = logprob;
    info[i0 + ${INFO.written}u] = written + 1u;
    let generated = info[i0 + ${INFO.generated}u] + 1u;
    info[i0 + ${INFO.generated}u] = generated;
    token[s] = id;
    pos[s] = pos[s] + 1u;
    seen[s * ${VW}u + id / 32u] |= 1u << (id % 32u);
    if (${eos} || generated >= info[i0 + ${INFO.maxNew}u]) { info[i0 + ${INFO.active}u] = 0u; }
  }
}
`;
}

export interface TokenLogprobShape {
  rows: number;
  vocab: number;
  /** log_softmax(logits · scale). */
  scale: number;
}

/** out[r] = log_softmax(logits[r] · scale)[target[r]] (a scored row's next token); rows whose target is past the vocabulary are skipped. */
export function tokenLogprobWgsl(s: TokenLogprobShape): string {
  const V = s.vocab;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targetIds: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${REDUCE}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = wg.x;
  let id = targetIds[r];
  if (id >= ${V}u) { return; }
  let row = r * ${V}u;
  var localMax = -3.4e38;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { localMax = max(localMax, logits[row + i] * ${f32(s.scale)}); }
  let m = maxF(t, localMax);
  var z = 0.0;
  for (var i = t; i < ${V}u; i += ${THREADS}u) { z += exp(logits[row + i] * ${f32(s.scale)} - m); }
  let total = sumF(t, z);
  if (t == 0u) { out[r] = logits[row + id] * ${f32(s.scale)} - m - log(total); }
}
`;
}

export class Sampler {
  private constructor(
    readonly shape: SamplerShape,
    private readonly kernel: Kernel,
  ) {}

  static async create(ctx: GpuContext, shape: SamplerShape): Promise<Sampler> {
    return new Sampler(shape, await ctx.kernel(samplerWgsl(shape), [shape.slots]));
  }

  dispatch(b: { logits: GPUBuffer; info: GPUBuffer; token: GPUBuffer; pos: GPUBuffer; seen: GPUBuffer; outIds: GPUBuffer; outLogprobs: GPUBuffer }): Dispatch {
    return this.kernel.dispatch(b.logits, b.info, b.token, b.pos, b.seen, b.outIds, b.outLogprobs);
  }
}

export class TokenLogprob {
  private constructor(private readonly kernel: Kernel) {}

  static async create(ctx: GpuContext, shape: TokenLogprobShape): Promise<TokenLogprob> {
    return new TokenLogprob(await ctx.kernel(tokenLogprobWgsl(shape), [shape.rows]));
  }

  dispatch(logits: GPUBuffer, target: GPUBuffer, out: GPUBuffer): Dispatch {
    return this.kernel.dispatch(logits, target, out);
  }
}
