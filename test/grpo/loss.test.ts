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

function run(config: GrpoLossConfig, extra: Partial<Record<'ref' | 'behaviour' | 'old', boolean>> = { old: true }) {
  return tf.tidy(() => {
    const inputs: GrpoLossInputs = {
      logprobs: tf.tensor2d(logprobs),
      oldLogprobs: extra.old ? tf.tensor2d(old) : undefined,
      refLogprobs: extra.ref ? tf.tensor2d(ref) : undefined,
      behaviourLogprobs: extra.behaviour ? tf.tensor2d(behaviour) : undefined,
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
    expect(run({ lossType: 'bnpo' }, { old: true, behaviour: true }).loss).toBeCloseTo(plain, 6);
    const withKl = sum(perToken(0.1, true).map(sum)) / tokens;
    const { loss, metrics } = run({ lossType: 'bnpo', beta: 0.1 }, { old: true, behaviour: true, ref: true });
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

describe('grpoLoss: gradient w.r.t. logprobs matches finite differences', () => {
  for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const) {
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
