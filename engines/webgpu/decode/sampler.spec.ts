// The GPU sampler against a plain float64 reference of transformers' processors on given logits: every
// drawn token lies in the reference's kept set, its recorded log-prob is the reference's log-probability
// of it, the draws' frequencies fit the reference distribution, and a seed gives the same draws again.
import { describe, expect, it } from 'vitest';
import { NO_ADAPTER, random, testGpu } from '../testing.js';
import { INFO, Sampler, seenWords, type SamplerShape } from './sampler.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

const V = 300;
const SLOTS = 8;
const DRAWS = 40;

/** Probabilities after temperature → top-k → top-p → min-p, renormalised (0 where cut), in float64. */
function reference(logits: Float64Array, p: { temperature: number; topK: number; topP: number; minP: number }): Float64Array {
  const scores = logits.map((v) => v / p.temperature);
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
  const kept = new Set(p.topK > 0 ? order.slice(0, p.topK) : order);
  const max = scores[order[0]];
  const weight = (i: number) => Math.exp(scores[i] - max);
  let total = 0;
  for (const i of kept) total += weight(i);
  if (p.topP < 1) {
    let before = 0;
    for (const i of order) {
      if (!kept.has(i)) continue;
      if (before >= p.topP * total) kept.delete(i);
      before += weight(i);
    }
  }
  for (const i of [...kept]) if (weight(i) < p.minP) kept.delete(i);
  const probs = new Float64Array(V);
  let z = 0;
  for (const i of kept) z += weight(i);
  for (const i of kept) probs[i] = weight(i) / z;
  return probs;
}

async function draw(shape: SamplerShape, logits: Float32Array, seeds: number[], seen?: Uint32Array) {
  const ctx = gpu!;
  const sampler = await Sampler.create(ctx, shape);
  const info = new Uint32Array(SLOTS * INFO.words);
  for (let s = 0; s < SLOTS; s++) {
    info[s * INFO.words + INFO.active] = 1;
    info[s * INFO.words + INFO.maxNew] = 1 << 30;
    info[s * INFO.words + INFO.seed0] = seeds[s];
    info[s * INFO.words + INFO.seed1] = 12345;
  }
  const rows = new Float32Array(SLOTS * V);
  for (let s = 0; s < SLOTS; s++) rows.set(logits, s * V);
  const buffers = {
    logits: ctx.upload(rows),
    info: ctx.upload(info),
    token: ctx.upload(new Uint32Array(SLOTS)),
    pos: ctx.upload(new Uint32Array(SLOTS)),
    seen: ctx.upload(seen ?? new Uint32Array(SLOTS * seenWords(V))),
    outIds: ctx.upload(new Uint32Array(SLOTS * shape.chunk)),
    outLogprobs: ctx.upload(new Float32Array(SLOTS * shape.chunk)),
  };
  ctx.submit(Array.from({ length: shape.chunk }, () => sampler.dispatch(buffers)));
  return { ids: new Uint32Array(await ctx.read(buffers.outIds)), logprobs: new Float32Array(await ctx.read(buffers.outLogprobs)) };
}

describe.skipIf(!gpu)('GPU sampler against a float64 reference', () => {
  const rnd = random(3);
  const logits = Float32Array.from({ length: V }, () => rnd() * 4);
  const base = { slots: SLOTS, vocab: V, chunk: DRAWS, repetitionPenalty: 1, logprobScale: 1, eosTokenIds: [] as number[] };
  const cases = [
    { temperature: 0.7, topK: 12, topP: 1, minP: 0 },
    { temperature: 1, topK: 0, topP: 0.5, minP: 0 },
    { temperature: 1.3, topK: 0, topP: 1, minP: 0.3 },
    { temperature: 0.9, topK: 40, topP: 0.8, minP: 0.05 },
  ];
  for (const c of cases) {
    it(`T ${c.temperature}, top-k ${c.topK}, top-p ${c.topP}, min-p ${c.minP}`, async () => {
      const probs = reference(Float64Array.from(logits), c);
      const seeds = Array.from({ length: SLOTS }, (_, s) => 1000 + s);
      const { ids, logprobs } = await draw({ ...base, ...c }, logits, seeds);
      const counts = new Float64Array(V);
      ids.forEach((id, i) => {
        expect(probs[id]).toBeGreaterThan(0);
        expect(Math.abs(logprobs[i] - Math.log(probs[id]))).toBeLessThan(1e-5);
        counts[id]++;
      });
      // Frequencies within 5 standard errors (plus a little) of the reference probabilities.
      const n = ids.length;
      for (let i = 0; i < V; i++) {
        const p = probs[i];
        expect(Math.abs(counts[i] / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n) + 0.01);
      }
      const again = await draw({ ...base, ...c }, logits, seeds);
      expect(Array.from(again.ids)).toEqual(Array.from(ids));
      const other = await draw({ ...base, ...c }, logits, seeds.map((s) => s + 17));
      expect(Array.from(other.ids)).not.toEqual(Array.from(ids));
    });
  }

  it('greedy with a repetition penalty: argmax of the penalised logits, raw log-softmax recorded', async () => {
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    // Slot s has seen the s most likely tokens: with penalty 100 (all top logits positive here? checked) they drop out.
    const seen = new Uint32Array(SLOTS * seenWords(V));
    for (let s = 0; s < SLOTS; s++) for (const id of order.slice(0, s)) seen[s * seenWords(V) + (id >>> 5)] |= 1 << (id & 31);
    expect(logits[order[SLOTS]]).toBeGreaterThan(0);
    const { ids, logprobs } = await draw({ ...base, chunk: 1, temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 100 }, logits, Array(SLOTS).fill(1), seen);
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let z = 0;
    for (const v of logits) z += Math.exp(v - max);
    for (let s = 0; s < SLOTS; s++) {
      expect(ids[s]).toBe(order[s]);
      expect(Math.abs(logprobs[s] - (logits[order[s]] - max - Math.log(z)))).toBeLessThan(1e-5);
    }
  });
});
