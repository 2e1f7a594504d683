// AdamW exactly as torch.optim.AdamW (non-amsgrad, non-foreach semantics):
//   p ← p − lr·wd·p                      (decoupled weight decay, before the moment update)
//   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)      (eps outside the sqrt)
// plus global-norm clipping as torch.nn.utils.clip_grad_norm_.
import { readFloat32 } from '../read-back.js';
import { tf } from '../tf.js';

export interface AdamWConfig {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

import type { AdamWState } from '../../../core/grpo/checkpoint.js';

export type { AdamWState };

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of completed optimiser steps (torch's `state['step']`). */
  stepCount = 0;
  private m: tf.Variable[];
  private v: tf.Variable[];

  constructor(
    readonly variables: tf.Variable[],
    config: AdamWConfig = {},
  ) {
    [this.beta1, this.beta2] = config.betas ?? [0.9, 0.999];
    this.eps = config.eps ?? 1e-8;
    this.weightDecay = config.weightDecay ?? 0;
    if (!(this.beta1 >= 0 && this.beta1 < 1 && this.beta2 >= 0 && this.beta2 < 1)) {
      throw new Error(`AdamW: betas must lie in [0, 1) (got ${this.beta1}, ${this.beta2})`);
    }
    const names = new Set(variables.map((p) => p.name));
    if (names.size !== variables.length) throw new Error('AdamW: two variables share a name; gradients keyed by name would be ambiguous');
    // tf.variable keeps its own reference to the initial value, so the temporary must be freed here.
    const zeros = (p: tf.Variable) => {
      const initial = tf.zerosLike(p);
      const moment = tf.variable(initial, false);
      initial.dispose();
      return moment;
    };
    this.m = variables.map(zeros);
    this.v = variables.map(zeros);
  }

  /**
   * Applies one update with gradients in the variables' order (or keyed by variable name). A variable
   * without a gradient (undefined) is left untouched, moments and weight decay included, as torch skips
   * parameters whose `.grad` is None.
   */
  step(grads: (tf.Tensor | undefined)[] | Record<string, tf.Tensor | undefined>, lr: number): void {
    const list = Array.isArray(grads) ? grads : this.variables.map((p) => grads[p.name]);
    if (list.length !== this.variables.length) throw new Error(`AdamW.step: ${list.length} gradients for ${this.variables.length} variables`);
    this.stepCount += 1;
    const t = this.stepCount;
    const biasCorrection1 = 1 - this.beta1 ** t;
    const biasCorrection2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    const stepSize = lr / biasCorrection1;
    tf.tidy(() => {
      this.variables.forEach((p, i) => {
        const g = list[i];
        if (!g) return;
        const decayed = this.weightDecay !== 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        this.m[i].assign(m);
        this.v[i].assign(v);
      });
    });
  }

  /** The moments as of this call (read asynchronously; a step taken meanwhile does not leak in). */
  async exportState(): Promise<AdamWState> {
    const step = this.stepCount;
    const names = this.variables.map((p) => p.name);
    const shapes = this.variables.map((p) => p.shape.slice());
    const moments = await readFloat32([...this.m, ...this.v], 'AdamW.exportState');
    return { step, m: moments.slice(0, this.m.length), v: moments.slice(this.m.length), names, shapes };
  }

  importState(state: AdamWState): void {
    if (state.m.length !== this.variables.length || state.v.length !== this.variables.length) {
      throw new Error(`AdamW.importState: state has ${state.m.length} moments for ${this.variables.length} variables`);
    }
    this.variables.forEach((p, i) => {
      const expected = p.shape.reduce((a, b) => a * b, 1);
      if (state.m[i].length !== expected || state.v[i].length !== expected) {
        throw new Error(
          `AdamW.importState: moment ${i} ("${state.names?.[i] ?? '?'}") has ${state.m[i].length} values, variable "${p.name}" of shape [${p.shape}] needs ${expected}`,
        );
      }
      tf.tidy(() => {
        this.m[i].assign(tf.tensor(state.m[i], p.shape));
        this.v[i].assign(tf.tensor(state.v[i], p.shape));
      });
    });
    this.stepCount = state.step;
  }

  dispose(): void {
    this.m.forEach((t) => t.dispose());
    this.v.forEach((t) => t.dispose());
  }
}

/**
 * Global L2 norm of all gradients, and the gradients scaled by min(1, maxNorm / (norm + 1e-6))
 * (torch.nn.utils.clip_grad_norm_), all on the device: nothing is read back, so the norm can join a
 * step's other metrics in its single read-back. A non-finite norm leaves the gradients unscaled.
 * `maxNorm` undefined or ≤ 0 disables clipping (the input tensors are returned). The caller owns the
 * returned norm and, when they differ from the input, the returned gradients.
 */
export function clipGradNorm(grads: tf.Tensor[], maxNorm: number | undefined): { norm: tf.Scalar; grads: tf.Tensor[] } {
  return tf.tidy(() => {
    // stack + sum, not addN: WebGPU's AddN binds every input to one shader and fails past its
    // storage-buffer limit (a LoRA on all projections has hundreds of matrices); Concat splits.
    const norm = tf.sqrt(grads.length ? tf.sum(tf.stack(grads.map((g) => tf.sum(tf.square(g))))) : tf.scalar(0)) as tf.Scalar;
    if (maxNorm === undefined || maxNorm <= 0) return { norm, grads };
    const coef = tf.where(tf.isFinite(norm), tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))), tf.scalar(1));
    return { norm, grads: grads.map((g) => tf.mul(g, coef)) };
  });
}
