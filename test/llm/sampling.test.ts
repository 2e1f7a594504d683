import { describe, expect, it } from 'vitest';
import { Rng } from '../../core/rng.js';
import { logProbOf, SamplingWorkspace, sampleToken, topKIndices, validateSamplingParams, type SamplingParams } from '../../core/llm/sampling.js';

const logitsOf = (probs: number[]) => Float32Array.from(probs.map((p) => Math.log(p) + 3));
const params = (p: SamplingParams) => validateSamplingParams(p);

function frequencies(row: Float32Array, p: SamplingParams, draws: number, seed = 1, seen?: number[]): number[] {
  const rng = new Rng(seed);
  const counts = new Array(row.length).fill(0);
  const full = params(p);
  for (let i = 0; i < draws; i++) counts[sampleToken(row, full, rng, { seen }).id]++;
  return counts.map((c) => c / draws);
}

function randomRow(n: number, seed: number, scale = 3): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

describe('sampleToken', () => {
  it('is greedy at temperature 0 and reports the log-prob under the raw logits', () => {
    const row = Float32Array.from([0.5, 2.5, -1, 2.25]);
    const picked = sampleToken(row, params({ temperature: 0 }), new Rng(0));
    expect(picked.id).toBe(1);
    const z = [0.5, 2.5, -1, 2.25].reduce((s, x) => s + Math.exp(x), 0);
    expect(picked.logprob).toBeCloseTo(2.5 - Math.log(z), 10);
  });

  it('applies the repetition penalty as transformers does (÷ positive, × negative), but not to the log-prob', () => {
    const row = Float32Array.from([3, 2, -0.5, -0.4]);
    // 3/2 = 1.5 < 2, so token 0 loses to token 1.
    expect(sampleToken(row, params({ temperature: 0, repetitionPenalty: 2 }), new Rng(0), { seen: [0] }).id).toBe(1);
    // Among the negatives: -0.5·2 = -1 loses to -0.4 unpenalised... and -0.4·2 = -0.8 loses to -0.5.
    const negatives = Float32Array.from([-0.5, -0.4]);
    expect(sampleToken(negatives, params({ temperature: 0, repetitionPenalty: 2 }), new Rng(0), { seen: [1] }).id).toBe(0);
    const picked = sampleToken(row, params({ temperature: 0, repetitionPenalty: 2 }), new Rng(0), { seen: [0] });
    expect(picked.logprob).toBeCloseTo(logProbOf(row, 1), 12);
  });

  it('samples in proportion to softmax(logits / T)', () => {
    const row = Float32Array.from([1, 0.5, 0, -1]);
    const T = 0.7;
    const z = [...row].reduce((s, x) => s + Math.exp(x / T), 0);
    const freq = frequencies(row, { temperature: T }, 40000);
    [...row].forEach((x, i) => expect(Math.abs(freq[i] - Math.exp(x / T) / z)).toBeLessThan(0.01));
  });

  it('top-p keeps the smallest head reaching p, renormalised', () => {
    const row = logitsOf([0.5, 0.3, 0.15, 0.05]);
    const freq = frequencies(row, { topP: 0.7 }, 20000);
    expect(freq[2] + freq[3]).toBe(0);
    expect(Math.abs(freq[0] - 0.5 / 0.8)).toBeLessThan(0.015);
    // p just above 0.8 needs the third token too.
    const wider = frequencies(row, { topP: 0.81 }, 20000);
    expect(wider[2]).toBeGreaterThan(0.1);
    expect(wider[3]).toBe(0);
  });

  // The nucleus by a full sort, as transformers computes it (after temperature), intersected with min-p.
  function referenceKept(row: Float32Array, T: number, topP: number, minP: number): Set<number> {
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]);
    const max = row[order[0]];
    const weights = order.map((i) => Math.exp((row[i] - max) / T));
    const total = weights.reduce((s, w) => s + w, 0);
    const kept = new Set<number>();
    let before = 0;
    for (let r = 0; r < order.length && (r === 0 || before < topP * total); r++) {
      if (weights[r] >= minP) kept.add(order[r]);
      before += weights[r];
    }
    return kept;
  }

  it.each([
    ['flat', 3, 1, 0.9, 0],
    ['peaked', 8, 0.7, 0.95, 0],
    ['hot', 2, 1.5, 0.5, 0],
    ['with min-p', 3, 1, 0.99, 0.02],
  ] as const)('top-p over a large vocabulary without top-k keeps exactly the nucleus (%s)', (_, scale, T, topP, minP) => {
    const row = randomRow(8000, scale * 10, scale);
    const nucleus = referenceKept(row, T, topP, minP);
    const rng = new Rng(3);
    const full = params({ topP, temperature: T, minP });
    const workspace = new SamplingWorkspace(row.length);
    const drawn = new Set<number>();
    for (let i = 0; i < 1000; i++) drawn.add(sampleToken(row, full, rng, { workspace }).id);
    for (const id of drawn) expect(nucleus.has(id)).toBe(true);
    expect(drawn.size).toBeGreaterThan(Math.min(nucleus.size, 1000) / 4);
  });

  it('top-p and min-p on top-k candidates keep the same set as the reference', () => {
    const row = randomRow(3000, 21, 2);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, 40);
    const sub = Float32Array.from(order, (i) => row[i]);
    const nucleus = [...referenceKept(sub, 0.8, 0.9, 0.05)].map((r) => order[r]);
    const rng = new Rng(4);
    const drawn = new Set<number>();
    for (let i = 0; i < 3000; i++) drawn.add(sampleToken(row, params({ topK: 40, topP: 0.9, minP: 0.05, temperature: 0.8 }), rng).id);
    expect([...drawn].sort()).toEqual(nucleus.sort());
  });

  it('uses a given log-normaliser for the log-prob instead of recomputing it', () => {
    const row = Float32Array.from([1, 2, 3]);
    expect(sampleToken(row, params({ temperature: 0 }), new Rng(0), { logNormalizer: 10 }).logprob).toBe(3 - 10);
  });

  it('top-k keeps the k most likely; top-k 1 is greedy at any temperature', () => {
    const row = logitsOf([0.1, 0.4, 0.3, 0.2]);
    const freq = frequencies(row, { topK: 2, temperature: 1 }, 20000);
    expect(freq[0] + freq[3]).toBe(0);
    expect(Math.abs(freq[1] - 4 / 7)).toBeLessThan(0.015);
    expect(frequencies(row, { topK: 1, temperature: 5 }, 200)[1]).toBe(1);
  });

  it('min-p drops tokens less than min_p × the top probability', () => {
    const row = logitsOf([0.5, 0.3, 0.15, 0.05]);
    const freq = frequencies(row, { minP: 0.2 }, 20000);
    expect(freq[3]).toBe(0);
    expect(Math.abs(freq[2] - 0.15 / 0.95)).toBeLessThan(0.015);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const row = randomRow(1000, 2, 1);
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 20 }, () => sampleToken(row, params({ topP: 0.95, topK: 50 }), rng).id);
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  it('rejects out-of-range parameters with the parameter name', () => {
    expect(() => validateSamplingParams({ temperature: -1 })).toThrow(/temperature/);
    expect(() => validateSamplingParams({ topP: 0 })).toThrow(/top_p/);
    expect(() => validateSamplingParams({ topK: 1.5 })).toThrow(/top_k/);
    expect(() => validateSamplingParams({ minP: 2 })).toThrow(/min_p/);
    expect(() => validateSamplingParams({ repetitionPenalty: 0 })).toThrow(/repetition_penalty/);
  });
});

describe('topKIndices', () => {
  it('matches a full sort', () => {
    const row = randomRow(3000, 11);
    const sorted = [...row.keys()].sort((a, b) => row[b] - row[a]);
    expect(topKIndices(row, 40)).toEqual(sorted.slice(0, 40));
    expect(topKIndices(row, 1)).toEqual(sorted.slice(0, 1));
  });
});

describe('sampleToken: the log-prob under the distribution actually sampled (behaviour log-probs)', () => {
  // Probabilities 0.4, 0.3, 0.2, 0.1 (logits log p + 3). Each case: the kept set renormalised, worked out by hand.
  const row = logitsOf([0.4, 0.3, 0.2, 0.1]);
  /** Every token drawn in 400 draws, with its sampled log-prob: one entry per distinct id. */
  function sampledLogprobs(p: SamplingParams, seen?: number[]): Map<number, number> {
    const rng = new Rng(5);
    const out = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const t = sampleToken(row, params(p), rng, { seen });
      out.set(t.id, t.sampledLogprob);
    }
    return out;
  }
  const close = (got: Map<number, number>, want: Record<number, number>) => {
    expect([...got.keys()].sort()).toEqual(Object.keys(want).map(Number).sort());
    for (const [id, lp] of got) expect(lp).toBeCloseTo(Math.log(want[id]), 6);
  };

  it('no truncation at T = 1: the model probabilities', () => close(sampledLogprobs({}), { 0: 0.4, 1: 0.3, 2: 0.2, 3: 0.1 }));
  it('temperature 0.5: p² renormalised, 16/30, 9/30, 4/30, 1/30', () => close(sampledLogprobs({ temperature: 0.5 }), { 0: 16 / 30, 1: 9 / 30, 2: 4 / 30, 3: 1 / 30 }));
  it('top-k 2: 4/7, 3/7', () => close(sampledLogprobs({ topK: 2 }), { 0: 4 / 7, 1: 3 / 7 }));
  // top-p 0.5 keeps a token while the mass before it is below 0.5: 0.4 (before 0), 0.3 (before 0.4).
  it('top-p 0.5: 4/7, 3/7', () => close(sampledLogprobs({ topP: 0.5 }), { 0: 4 / 7, 1: 3 / 7 }));
  it('top-p 0.5 over top-k 3: the same 4/7, 3/7', () => close(sampledLogprobs({ topK: 3, topP: 0.5 }), { 0: 4 / 7, 1: 3 / 7 }));
  // min-p 0.6: tokens at least 0.6 × 0.4 = 0.24 likely: 0.4 and 0.3.
  it('min-p 0.6: 4/7, 3/7', () => close(sampledLogprobs({ minP: 0.6 }), { 0: 4 / 7, 1: 3 / 7 }));
  // At T = 0.5 the weights relative to the top are 1, 9/16, 4/16, 1/16; min-p 0.4 keeps the first two.
  it('min-p 0.4 over top-k 4 at T = 0.5: 16/25, 9/25', () => close(sampledLogprobs({ topK: 4, minP: 0.4, temperature: 0.5 }), { 0: 16 / 25, 1: 9 / 25 }));
  // Penalty 2 on token 0 (logit log 0.4 + 3 > 0, so ÷ 2): weights ∝ exp(logit): token 0 becomes e^{(log 0.4 + 3)/2}.
  it('repetition penalty: the penalised logits are what is sampled', () => {
    const penalised0 = Math.exp((Math.log(0.4) + 3) / 2);
    const others = [0.3, 0.2, 0.1].map((p) => Math.exp(Math.log(p) + 3));
    const total = penalised0 + others.reduce((a, b) => a + b, 0);
    close(sampledLogprobs({ repetitionPenalty: 2 }, [0]), { 0: penalised0 / total, 1: others[0] / total, 2: others[1] / total, 3: others[2] / total });
  });
  // Greedy draws from no distribution: it reports the raw log-softmax, p = 0.4 for the top token.
  it('greedy: the raw log-softmax of the chosen token', () => close(sampledLogprobs({ temperature: 0 }), { 0: 0.4 }));
});
