import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { AdamW, clipGradNorm } from '../../engines/tfjs/grpo/optimizer.js';
import { learningRateSchedule, warmupSteps } from '../../core/grpo/schedule.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('AdamW (torch.optim.AdamW semantics)', () => {
  it('matches three hand-computed steps: decoupled decay, bias correction, eps outside the sqrt', () => {
    const p = tf.variable(tf.tensor1d([1.0, -2.0]), true, 'p');
    const opt = new AdamW([p], { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    const lr = 0.1;
    const grads = [
      [0.5, 0.0],
      [-1.0, 0.0],
      [0.25, 2.0],
    ];
    // Reference arithmetic, element by element, written out as torch does it.
    const ref = [1.0, -2.0];
    const m = [0, 0];
    const v = [0, 0];
    for (let t = 1; t <= 3; t++) {
      for (let i = 0; i < 2; i++) {
        const g = grads[t - 1][i];
        ref[i] *= 1 - lr * 0.01;
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8;
        ref[i] -= (lr / (1 - 0.9 ** t)) * (m[i] / denom);
      }
      tf.tidy(() => opt.step([tf.tensor1d(grads[t - 1])], lr));
      const got = p.dataSync();
      expect(got[0]).toBeCloseTo(ref[0], 6);
      expect(got[1]).toBeCloseTo(ref[1], 6);
    }
    // The same numbers worked by hand for element 0, steps 1 and 2:
    //   step 1: p = 1·0.999 = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, √v̂ = 0.5 → p = 0.999 − 0.1 = 0.899
    //   step 2: p = 0.899·0.999 = 0.898101; m = −0.055, v = 0.00124975; m̂ = −0.055/0.19, √v̂ = √(0.00124975/0.001999)
    //           → p = 0.898101 + 0.1·0.2894737/0.7906883 = 0.9347113
    const step2 = 0.899 * 0.999 + (0.1 * (0.055 / 0.19)) / Math.sqrt(0.00124975 / 0.001999);
    expect(step2).toBeCloseTo(0.9347113, 6);
    // Element 1 had zero gradient for two steps: only weight decay moved it.
    expect(opt.stepCount).toBe(3);
    opt.dispose();
    p.dispose();
  });

  it('state round-trips through Float32Arrays and continues identically', async () => {
    const make = () => tf.variable(tf.tensor2d([[0.3, -0.1], [0.2, 0.4]]), true, `w${Math.random()}`);
    const a = make();
    const b = make();
    const optA = new AdamW([a], { weightDecay: 0.1 });
    const optB = new AdamW([b], { weightDecay: 0.1 });
    const g1 = tf.tensor2d([[0.1, 0.2], [-0.3, 0.05]]);
    const g2 = tf.tensor2d([[-0.2, 0.1], [0.4, -0.05]]);
    optA.step([g1], 0.01);
    b.assign(a);
    const state = await optA.exportState();
    expect(state.step).toBe(1);
    expect(state.m[0]).toBeInstanceOf(Float32Array);
    optB.importState(state);
    optA.step([g2], 0.01);
    optB.step([g2], 0.01);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(() => optB.importState({ ...state, m: [new Float32Array(3)] })).toThrow(/3 values, variable .* needs 4/);
    tf.dispose([a, b, g1, g2]);
    optA.dispose();
    optB.dispose();
  });

  it('leaves a variable without gradient untouched (torch skips grad None)', () => {
    const p = tf.variable(tf.scalar(1), true, 'untouched');
    const q = tf.variable(tf.scalar(1), true, 'touched');
    const opt = new AdamW([p, q], { weightDecay: 0.5 });
    opt.step({ touched: tf.scalar(1) }, 0.1);
    expect(p.dataSync()[0]).toBe(1);
    expect(q.dataSync()[0]).toBeLessThan(1);
    tf.dispose([p, q]);
    opt.dispose();
  });
});

describe('clipGradNorm', () => {
  it('returns the pre-clip global norm and scales by max/(norm + 1e-6) only above the max', async () => {
    const grads = [tf.tensor1d([3]), tf.tensor1d([0, 4])];
    const { norm, grads: clipped } = clipGradNorm(grads, 1);
    expect((await norm.data())[0]).toBeCloseTo(5, 6);
    expect((await clipped[0].data())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    expect((await clipped[1].data())[1]).toBeCloseTo(4 / (5 + 1e-6), 6);
    // Below the max the coefficient is exactly 1 (computed on the device, so the gradients are new tensors).
    const loose = clipGradNorm(grads, 10);
    expect(await Promise.all(loose.grads.map((g) => g.array()))).toEqual([[3], [0, 4]]);
    // Disabled: the inputs come back as they are.
    const off = clipGradNorm(grads, 0);
    expect(off.grads).toBe(grads);
    tf.dispose([...grads, ...clipped, ...loose.grads, norm, loose.norm, off.norm]);
  });
  it('leaves gradients unscaled when the norm is not finite (as before clipping moved to the device)', async () => {
    const grads = [tf.tensor1d([Infinity, 1])];
    const { norm, grads: clipped } = clipGradNorm(grads, 1);
    expect((await norm.data())[0]).toBe(Infinity);
    expect(await clipped[0].array()).toEqual([Infinity, 1]);
    tf.dispose([...grads, ...clipped, norm]);
  });
});

describe('learning-rate schedules (HF get_*_schedule_with_warmup)', () => {
  it('warmup steps = ceil(ratio × total)', () => {
    expect(warmupSteps({ totalSteps: 10, warmupRatio: 0.25 })).toBe(3);
    expect(warmupSteps({ totalSteps: 10, warmupRatio: 0.1 })).toBe(1);
    expect(warmupSteps({ totalSteps: 10, warmupRatio: 0.1, warmupSteps: 4 })).toBe(4);
  });
  it('linear: 0 → lr over warmup, then down to 0 at total', () => {
    const lr = learningRateSchedule({ type: 'linear', learningRate: 1, totalSteps: 10, warmupRatio: 0.25 });
    expect([0, 1, 2, 3, 5, 10].map(lr)).toEqual([0, 1 / 3, 2 / 3, 1, 5 / 7, 0]);
  });
  it('cosine: half a cosine after warmup', () => {
    const lr = learningRateSchedule({ type: 'cosine', learningRate: 2, totalSteps: 10, warmupRatio: 0.1 });
    expect(lr(0)).toBe(0);
    expect(lr(1)).toBeCloseTo(2, 12);
    expect(lr(4)).toBeCloseTo(2 * 0.5 * (1 + Math.cos(Math.PI / 3)), 12); // progress 3/9
    expect(lr(10)).toBeCloseTo(0, 12);
  });
  it('constant, with and without warmup; bad settings are named', () => {
    expect([0, 5, 99].map(learningRateSchedule({ type: 'constant', learningRate: 0.5, totalSteps: 10 }))).toEqual([0.5, 0.5, 0.5]);
    const warm = learningRateSchedule({ type: 'constant', learningRate: 0.5, totalSteps: 10, warmupRatio: 0.2 });
    expect([0, 1, 2, 9].map(warm)).toEqual([0, 0.25, 0.5, 0.5]);
    expect(() => learningRateSchedule({ type: 'step' as never, learningRate: 1, totalSteps: 1 })).toThrow(/"step" is not one of/);
    expect(() => learningRateSchedule({ type: 'linear', learningRate: 1, totalSteps: 10, warmupRatio: 2 })).toThrow(/warmupRatio/);
  });
});

describe('AdamW tensor bookkeeping', () => {
  it('creating, importing into and disposing an optimiser leaves no tensors behind', async () => {
    const p = tf.variable(tf.zeros([2, 3]), true, 'bookkeeping');
    const before = tf.memory().numTensors;
    const opt = new AdamW([p]);
    expect(tf.memory().numTensors).toBe(before + 2); // m and v
    opt.importState(await opt.exportState());
    expect(tf.memory().numTensors).toBe(before + 2);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    p.dispose();
  });
});
