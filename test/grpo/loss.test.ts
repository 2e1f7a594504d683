import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { grpoLoss, type GrpoLossConfig, type GrpoLossInputs } from '../../engines/tfjs/grpo/loss.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// A batch of B = 2 completions, T = 3 tokens; row 1's last token is padding.
const logprobs = [
  [-1.0, -0.5, -2.0],
  [-0.3, -0.7, -0.7],
];
const old = [
  [-1.5, -0.4, -2.0],
  [0.0, -1.2, -0.2],
];
const ref = [
  [-1.2, -0.5, -1.0],
  [-0.3, -1.0, -5.0],
];
const behaviour = [
  [-2.5, -0.4, -2.0],
  [0.5, -1.2, -0.2],
];
const mask = [
  [1, 1, 1],
  [1, 1, 0],
];
const advantages = [1.0, -2.0];
const eps = 0.2;
const epsHigh = 0.3;

// Per-token surrogate −min(coef1·A, clip(coef1, 0.8, 1.3)·A), coef1 = exp(logp − old):
//   row 0 (A = +1): t0 log-ratio +0.5 → coef1 = e^0.5 = 1.6487 > 1.3: clipped high → −1.3
//                   t1 log-ratio −0.1 → coef1 = e^−0.1 = 0.9048 inside → −0.9048
//                   t2 log-ratio 0   → −1
//   row 1 (A = −2): t0 log-ratio −0.3 → coef1 = e^−0.3 = 0.7408 < 0.8: clipped low → −(0.8·−2) = 1.6
//                   t1 log-ratio +0.5 → coef1 = 1.6487 > 1.3 but A < 0, so the unclipped term wins:
//                                       −min(−3.2974, −2.6) = 3.2974 (not counted as clipped)
//                   t2 masked.
const surrogate = [
  [-1.3, -Math.exp(-0.1), -1],
  [1.6, 2 * Math.exp(0.5)],
];
// k3 = e^d − d − 1 with d = ref − logp: row 0: d = −0.2, 0, 1.0; row 1: d = 0, −0.3.
const k3 = (d: number) => Math.exp(d) - d - 1;
const kl = [
  [k3(-0.2), k3(0), k3(1.0)],
  [k3(0), k3(-0.3)],
];
// Importance weights min(exp(old − behaviour), 2): row 0 t0: e^1 → capped at 2; row 1 t0: e^−0.5; others 1.
const isWeight = [
  [2, 1, 1],
  [Math.exp(-0.5), 1],
];
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const tokens = 5;

function perToken(beta: number, withIs: boolean): number[][] {
  return surrogate.map((row, b) => row.map((s, t) => s * (withIs ? isWeight[b][t] : 1) + beta * kl[b][t]));
}

function run(config: GrpoLossConfig, extra: Partial<Record<'ref' | 'behaviour' | 'old', boolean>> & { entropy?: number[][] } = { old: true }) {
  return tf.tidy(() => {
    const inputs: GrpoLossInputs = {
      logprobs: tf.tensor2d(logprobs),
      oldLogprobs: extra.old ? tf.tensor2d(old) : undefined,
      refLogprobs: extra.ref ? tf.tensor2d(ref) : undefined,
      behaviourLogprobs: extra.behaviour ? tf.tensor2d(behaviour) : undefined,
      entropy: extra.entropy ? tf.tensor2d(extra.entropy) : undefined,
      mask: tf.tensor2d(mask),
      advantages: tf.tensor1d(advantages),
    };
    const { loss, metrics } = grpoLoss(inputs, { epsilon: eps, epsilonHigh: epsHigh, ...config });
    return {
      loss: loss.dataSync()[0],
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, v.dataSync()[0]])),
    };
  });
}

describe('grpoLoss: hand-computed values', () => {
  for (const beta of [0, 0.1]) {
    const pt = perToken(beta, false);
    const rowSums = pt.map(sum);
    const expected = {
      grpo: (rowSums[0] / 3 + rowSums[1] / 2) / 2, // beta 0: (−3.2048/3 + 4.8974/2)/2 = 0.69022
      bnpo: sum(rowSums) / tokens, // beta 0: 1.69261/5 = 0.33852
      dr_grpo: sum(rowSums) / (2 * 4), // B × maxCompletionLength = 2 × 4
      dapo: sum(rowSums) / 10, // numItemsInBatch = 10 (the whole accumulated batch)
    };
    for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const) {
      it(`${lossType}, beta ${beta}`, () => {
        const { loss, metrics } = run(
          { lossType, beta, maxCompletionLength: 4, numItemsInBatch: 10 },
          { old: true, ref: beta !== 0 },
        );
        expect(loss).toBeCloseTo(expected[lossType], 5);
        expect(metrics['clip_ratio/low_mean']).toBeCloseTo(1 / 5, 6);
        expect(metrics['clip_ratio/high_mean']).toBeCloseTo(1 / 5, 6);
        expect(metrics['clip_ratio/region_mean']).toBeCloseTo(2 / 5, 6);
        if (beta !== 0) expect(metrics.kl).toBeCloseTo(sum(kl.flat()) / tokens, 6);
        else expect(metrics.kl).toBeUndefined();
      });
    }
  }

  it('sanity-checks the written-out numbers themselves', () => {
    expect(sum(perToken(0, false).map(sum))).toBeCloseTo(1.6926051, 6);
    expect(sum(kl.flat()) / tokens).toBeCloseTo(0.1555662, 6);
  });

  it('gradient accumulation divides grpo/bnpo/dr_grpo by the number of micro-batches, not dapo', () => {
    const rowSums = perToken(0, false).map(sum);
    expect(run({ lossType: 'bnpo', gradientAccumulationSteps: 4 }).loss).toBeCloseTo(sum(rowSums) / tokens / 4, 6);
    expect(run({ lossType: 'grpo', gradientAccumulationSteps: 2 }).loss).toBeCloseTo((rowSums[0] / 3 + rowSums[1] / 2) / 4, 6);
    expect(run({ lossType: 'dapo', numItemsInBatch: 10, gradientAccumulationSteps: 4 }).loss).toBeCloseTo(sum(rowSums) / 10, 6);
  });

  it('importance-sampling correction weights the surrogate, not the KL term', () => {
    const plain = sum(perToken(0, true).map(sum)) / tokens; // (−4.50484 + 4.26789)/5 = −0.04739
    const tis = { importanceSamplingMode: 'token_truncate', importanceSamplingClipMax: 2 } as const;
    expect(run({ lossType: 'bnpo', ...tis }, { old: true, behaviour: true }).loss).toBeCloseTo(plain, 6);
    const withKl = sum(perToken(0.1, true).map(sum)) / tokens;
    const { loss, metrics } = run({ lossType: 'bnpo', beta: 0.1, ...tis }, { old: true, behaviour: true, ref: true });
    expect(loss).toBeCloseTo(withKl, 6);
    // If the KL term were weighted too, row 0 t0's 0.1·k3(−0.2) would count twice: 0.1·0.01873/5 = 3.7e-4 more.
    expect(Math.abs(loss - (withKl + (0.1 * kl[0][0]) / tokens))).toBeGreaterThan(3e-4);
    expect(metrics['sampling/importance_sampling_ratio/mean']).toBeCloseTo((2 + 1 + 1 + Math.exp(-0.5) + 1) / 5, 6);
  });

  it('without old log-probs the ratio is 1: loss = −mean(A) and the gradient is −A/(n·B) on real tokens', () => {
    const { loss, metrics } = run({ lossType: 'grpo' }, {});
    expect(loss).toBeCloseTo(-(1 + -2) / 2, 6);
    expect(metrics['clip_ratio/region_mean']).toBe(0);
    const grad = tf.tidy(() =>
      tf
        .grad((lp: tf.Tensor) =>
          grpoLoss({ logprobs: lp as tf.Tensor2D, mask: tf.tensor2d(mask), advantages: tf.tensor1d(advantages) }, { lossType: 'grpo' }).loss,
        )(tf.tensor2d(logprobs))
        .arraySync(),
    ) as number[][];
    const expected = [
      [-1 / 6, -1 / 6, -1 / 6],
      [2 / 4, 2 / 4, 0],
    ];
    grad.flat().forEach((g, i) => expect(g).toBeCloseTo(expected.flat()[i], 6));
  });

  it('rejects a missing reference with beta ≠ 0, unknown loss types and dr_grpo without maxCompletionLength', () => {
    expect(() => run({ beta: 0.1 })).toThrow(/beta is 0.1 but no refLogprobs/);
    expect(() => run({ lossType: 'ppo' as never })).toThrow(/lossType "ppo"/);
    expect(() => run({ lossType: 'dr_grpo' })).toThrow(/maxCompletionLength/);
  });
});

// The options TRL 1.10 added (docs/grpo-loss.md cites each), on the same batch. Surrogate row sums without
// any weighting: row 0 = −1.3 − e^−0.1 − 1 = −3.2048374, row 1 = 1.6 + 2e^0.5 = 4.8974425.
describe('grpoLoss: TRL 1.10 options, hand-computed', () => {
  it('importance_sampling_level sequence (GSPO): one ratio per completion from its mean log-ratio', () => {
    // Row 0: log-ratios 0.5, −0.1, 0 → mean 0.13333 → w = e^0.13333 = 1.1426308, A = +1: each token −1.1426308.
    // Row 1: log-ratios −0.3, 0.5 → mean 0.1 → w = e^0.1 = 1.1051709, A = −2: each token +2.2103418.
    // grpo: (−1.1426308 + 2.2103418)/2 = 0.5338555; nothing outside [0.8, 1.3].
    const gspo = run({ lossType: 'grpo', importanceSamplingLevel: 'sequence' });
    expect(gspo.loss).toBeCloseTo(0.5338555, 6);
    expect(gspo.metrics['clip_ratio/region_mean']).toBe(0);
    // ε = 0.05, ε_high = 0.1: row 0's w > 1.1 with A > 0 → clipped at −1.1; row 1 (A < 0) keeps −min(−2.2103, −2.2) = 2.2103418.
    const clipped = run({ lossType: 'grpo', importanceSamplingLevel: 'sequence', epsilon: 0.05, epsilonHigh: 0.1 });
    expect(clipped.loss).toBeCloseTo((-1.1 + 2.2103418) / 2, 6);
    // Per sequence, the clip ratios are fractions of the rows (TRL's global_masked_mean of a [B, 1] value).
    expect(clipped.metrics['clip_ratio/high_mean']).toBeCloseTo(0.5, 6);
    expect(clipped.metrics['clip_ratio/low_mean']).toBe(0);
    expect(clipped.metrics['clip_ratio/high_max']).toBe(1);
  });

  it('delta caps the unclipped ratio too (two-sided clipping for A < 0)', () => {
    // delta 1.5: row 1 t1 (w = e^0.5 = 1.6487, A = −2) becomes −min(−2·1.5, −2·1.3) = 3 instead of 3.2974425;
    // row 0 t0 (A > 0) was already clipped at 1.3. bnpo: (−3.2048374 + 1.6 + 3)/5 = 0.2790325.
    expect(run({ lossType: 'bnpo', delta: 1.5 }).loss).toBeCloseTo(0.2790325, 6);
    expect(run({ lossType: 'bnpo', delta: 1.7 }).loss).toBeCloseTo(1.6926051 / 5, 6); // above every ratio: no change
  });

  it('cispo: −sg(min(w, ε_high))·A·logp over the batch tokens, no gradient through the weight', () => {
    // ε_high 1.2: w = min(e^0.5, 1.2) = 1.2, e^−0.1 = 0.9048374, 1 | min(e^−0.3 = 0.7408182, 1.2), min(e^0.5, 1.2) = 1.2.
    // −w·A·logp: row 0 (A = 1): 1.2·1.0 = 1.2, 0.9048374·0.5 = 0.4524187, 2.0;
    //            row 1 (A = −2): −0.7408182·2·0.3 = −0.4444909, −1.2·2·0.7 = −1.68. Sum 1.5279278; / numItemsInBatch 10.
    const config: GrpoLossConfig = { lossType: 'cispo', epsilonHigh: 1.2, numItemsInBatch: 10 };
    const { loss, metrics } = run(config);
    expect(loss).toBeCloseTo(0.15279278, 6);
    expect(metrics.cispo_clip_ratio).toBeCloseTo(1 / 5, 6); // row 0 t0 (w > 1.2, A > 0)
    expect(metrics['clip_ratio/region_mean']).toBeUndefined();
    // ∂/∂logp = −w·A/10 (the weight held fixed): row 0 t1 −0.0904837; a gradient through w would add +0.0452419.
    const grad = tf.tidy(() =>
      tf
        .grad((lp: tf.Tensor) =>
          grpoLoss({ logprobs: lp as tf.Tensor2D, oldLogprobs: tf.tensor2d(old), mask: tf.tensor2d(mask), advantages: tf.tensor1d(advantages) }, config).loss,
        )(tf.tensor2d(logprobs))
        .arraySync(),
    ) as number[][];
    expect(grad[0][1]).toBeCloseTo(-0.0904837, 6);
    expect(grad[1][1]).toBeCloseTo(0.24, 6);
    expect(grad[1][2]).toBe(0);
  });

  it('sapo: soft gate σ(τ(w − 1))·4/τ, τ_pos = 1 for A > 0, τ_neg = 1.05 otherwise, normalised as grpo', () => {
    // Row 0 (τ 1): w = 1.6487213 → σ(0.6487213) = 0.6567231 → ·4 = 2.6268925; w = 0.9048374 → σ(−0.0951626) = 0.4762273
    //   → 1.9049093; w = 1 → 2. Tokens −2.6268925, −1.9049093, −2; mean −2.1772673.
    // Row 1 (τ 1.05, A = −2): w = 0.7408182 → σ(−0.2721409) = 0.4323836 → ·4/1.05 = 1.6471756 → +3.2943512;
    //   w = 1.6487213 → σ(0.6811574) = 0.6639966 → 2.5295109 → +5.0590218. Mean 4.1766865.
    // grpo: (−2.1772673 + 4.1766865)/2 = 0.9997096.
    expect(run({ lossType: 'sapo' }).loss).toBeCloseTo(0.9997096, 5);
    expect(run({ lossType: 'sapo', sapoTemperatureNeg: 1 }).loss).not.toBeCloseTo(0.9997096, 3);
  });

  it('top_entropy_quantile keeps the tokens at or above the (1 − ρ) quantile of the real tokens’ entropies', () => {
    // Real entropies 0.5, 2.0, 1.0 | 3.0, 0.1 (row 1's 9.9 is padding). Sorted 0.1 0.5 1.0 2.0 3.0;
    // ρ = 0.4: the 0.6 quantile at position 0.6·4 = 2.4 → 1.0 + 0.4·(2.0 − 1.0) = 1.4: keeps row 0 t1 and row 1 t0.
    // bnpo (normaliser still every real token): (−0.9048374 + 1.6)/5 = 0.1390325.
    const entropy = [
      [0.5, 2.0, 1.0],
      [3.0, 0.1, 9.9],
    ];
    expect(run({ lossType: 'bnpo', topEntropyQuantile: 0.4 }, { old: true, entropy }).loss).toBeCloseTo(0.1390325, 6);
    // ρ = 0: only the highest-entropy real token (row 1 t0, not the padding's 9.9): 1.6/5.
    expect(run({ lossType: 'bnpo', topEntropyQuantile: 0 }, { old: true, entropy }).loss).toBeCloseTo(0.32, 6);
    expect(run({ lossType: 'bnpo', topEntropyQuantile: 1 }, { old: true, entropy }).loss).toBeCloseTo(1.6926051 / 5, 6);
    expect(() => run({ topEntropyQuantile: 0.5 })).toThrow(/no entropy/);
  });

  it('off_policy_mask_threshold drops completions with A < 0 whose mean (sampler − current) log-prob is above it', () => {
    // With the sampler's log-probs: row 0 mean (−1.5 + 0.1 + 0)/3 < 0 (and A > 0); row 1 (0.8 − 0.5)/2 = 0.15, A < 0.
    const noCorrection = { lossType: 'bnpo', importanceSamplingCorrection: false } as const;
    expect(run({ ...noCorrection, offPolicyMaskThreshold: 0.1 }, { old: true, behaviour: true }).loss).toBeCloseTo(-3.2048374 / 5, 6);
    expect(run({ ...noCorrection, offPolicyMaskThreshold: 0.2 }, { old: true, behaviour: true }).loss).toBeCloseTo(1.6926051 / 5, 6);
    // Without them the old log-probs stand in: row 1 (0.3 − 0.5)/2 = −0.1 ≤ 0.1, kept.
    expect(run({ ...noCorrection, offPolicyMaskThreshold: 0.1 }).loss).toBeCloseTo(1.6926051 / 5, 6);
  });

  describe('sampler/trainer correction modes (old − behaviour: row 0 = 1, 0, 0; row 1 = −0.5, 0)', () => {
    const corrected = (config: GrpoLossConfig) => run({ lossType: 'bnpo', ...config }, { old: true, behaviour: true });
    it('token_mask zeroes tokens whose ratio is outside the bounds', () => {
      // Ratios e, 1, 1 | e^−0.5, 1 with C_max 2 → 0, 1, 1 | 0.6065307, 1:
      // (−0.9048374 − 1 + 1.6·0.6065307 + 3.2974425)/5 = 0.4726111.
      const { loss, metrics } = corrected({ importanceSamplingMode: 'token_mask', importanceSamplingClipMax: 2 });
      expect(loss).toBeCloseTo(0.4726111, 6);
      expect(metrics['sampling/importance_sampling_masked_fraction']).toBeCloseTo(1 / 5, 6);
      expect(metrics['sampling/importance_sampling_ratio/min']).toBe(0);
      expect(metrics['sampling/importance_sampling_ratio/max']).toBe(1);
      expect(metrics['sampling/importance_sampling_ratio/mean']).toBeCloseTo((3 + 0.6065307) / 5, 6);
      expect(metrics['sampling/sampling_logp_difference/mean']).toBeCloseTo(1.5 / 5, 6);
      expect(metrics['sampling/sampling_logp_difference/max']).toBeCloseTo(1, 6);
    });
    it('sequence_truncate: exp of the summed differences per completion, clipped', () => {
      // Row 0: e^1 → 2; row 1: e^−0.5 = 0.6065307. (2·−3.2048374 + 0.6065307·4.8974425)/5 = −0.6878451.
      const { loss, metrics } = corrected({ importanceSamplingMode: 'sequence_truncate', importanceSamplingClipMax: 2 });
      expect(loss).toBeCloseTo(-0.6878451, 6);
      expect(metrics['sampling/importance_sampling_ratio/mean']).toBeCloseTo((2 + 0.6065307) / 2, 6); // over the rows
      expect(metrics['sampling/importance_sampling_truncated_fraction']).toBeCloseTo(0.5, 6);
    });
    it('sequence_mask (TRL default, C_max 3) keeps e^1 < 3, drops it at C_max 2, and C_min masks from below', () => {
      // Default: (e·−3.2048374 + 0.6065307·4.8974425)/5 = (−8.7116524 + 2.9704491)/5 = −1.1482407.
      const { loss, metrics } = corrected({});
      expect(loss).toBeCloseTo(-1.1482407, 5);
      expect(metrics['sampling/importance_sampling_masked_fraction']).toBe(0);
      expect(corrected({ importanceSamplingClipMax: 2 }).loss).toBeCloseTo(2.9704491 / 5, 6);
      expect(corrected({ importanceSamplingClipMin: 0.7 }).loss).toBeCloseTo(-8.7116524 / 5, 5);
    });
    it('rejects bounds that cannot work', () => {
      expect(() => corrected({ importanceSamplingClipMin: 3, importanceSamplingClipMax: 2 })).toThrow(/must be less than/);
      expect(() => corrected({ importanceSamplingMode: 'token_truncate', importanceSamplingClipMax: null })).toThrow(/needs importanceSamplingClipMin or/);
      expect(() => run({ importanceSamplingCorrection: true })).toThrow(/behaviourLogprobs/);
    });
  });
});

describe('grpoLoss: gradient w.r.t. logprobs matches finite differences', () => {
  for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'cispo', 'sapo'] as const) {
    it(lossType, () => {
      const config: GrpoLossConfig = { lossType, epsilon: eps, epsilonHigh: epsHigh, beta: 0.1, maxCompletionLength: 4, numItemsInBatch: 10 };
      const lossAt = (lp: number[][]) =>
        tf.tidy(() =>
          grpoLoss(
            {
              logprobs: tf.tensor2d(lp),
              oldLogprobs: tf.tensor2d(old),
              refLogprobs: tf.tensor2d(ref),
              behaviourLogprobs: tf.tensor2d(behaviour),
              mask: tf.tensor2d(mask),
              advantages: tf.tensor1d(advantages),
            },
            config,
          ).loss.dataSync()[0],
        );
      const analytic = tf.tidy(() =>
        tf
          .grad((lp: tf.Tensor) =>
            grpoLoss(
              {
                logprobs: lp as tf.Tensor2D,
                oldLogprobs: tf.tensor2d(old),
                refLogprobs: tf.tensor2d(ref),
                behaviourLogprobs: tf.tensor2d(behaviour),
                mask: tf.tensor2d(mask),
                advantages: tf.tensor1d(advantages),
              },
              config,
            ).loss,
          )(tf.tensor2d(logprobs))
          .arraySync(),
      ) as number[][];
      const h = 1e-2;
      let nonzero = 0;
      for (let b = 0; b < 2; b++) {
        for (let t = 0; t < 3; t++) {
          const plus = logprobs.map((row) => row.slice());
          const minus = logprobs.map((row) => row.slice());
          plus[b][t] += h;
          minus[b][t] -= h;
          const numeric = (lossAt(plus) - lossAt(minus)) / (2 * h);
          expect(analytic[b][t]).toBeCloseTo(numeric, 3);
          if (Math.abs(analytic[b][t]) > 1e-3) nonzero++;
        }
      }
      // Masked token gets no gradient; the clipped tokens only get the KL part; the rest are nonzero.
      expect(analytic[1][2]).toBe(0);
      expect(nonzero).toBeGreaterThanOrEqual(3);
    });
  }
});
