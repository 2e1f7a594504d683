// The GRPO loss on the device, token by token, as engines/tfjs/grpo/loss.ts computes it (TRL's terms):
//   coef1 = exp(logp − old), coef2 = clip(coef1, 1 − ε, 1 + ε_high)
//   perToken = −min(coef1·A, coef2·A) × min(exp(old − behaviour), cap) + β·(exp(ref − logp) − (ref − logp) − 1)
// and its derivative in logp, with tfjs's conventions at ties (min passes to its first argument where
// a ≤ b; clip passes where lo ≤ x ≤ hi). The normalisation per loss type is a per-token weight the host
// computes from the mask (lossWeights), so the kernel is the same for all of them; every metric is a
// weighted per-token sum too. A new per-token term is one more entry in TERMS (its value, its
// derivative, its metric) and nothing else.
import type { GpuContext, Kernel, Dispatch } from './device.js';
import { elementwiseEntry, elementwiseGrid } from './kernels/grid.js';
import type { resolveLossConfig } from '../../core/grpo/loss-spec.js';

type LossConfig = ReturnType<typeof resolveLossConfig>;

/** Rows of the per-token input block [INPUT_ROWS, slots]. */
export const INPUT_ROW = { old: 0, ref: 1, behaviour: 2, advantage: 3, lossWeight: 4, metricWeight: 5 } as const;
export const INPUT_ROWS = 6;

export interface LossFlags {
  /** Old log-probs given (num_iterations > 1); otherwise old = logp detached. */
  old: boolean;
  /** Reference log-probs present (β ≠ 0). */
  ref: boolean;
  /** Importance-sampling correction with the sampler's log-probs. */
  behaviour: boolean;
}

/** The metrics the step reports, in the order of the sums buffer. `loss` is Σ lossWeight·perToken. */
export function metricNames(flags: LossFlags): string[] {
  return ['loss', 'entropy', 'clip_ratio/low_mean', 'clip_ratio/high_mean', 'clip_ratio/region_mean', ...(flags.ref ? ['kl'] : []), ...(flags.behaviour ? ['sampling/importance_sampling_ratio/mean'] : [])];
}

export function perTokenLossWgsl(slots: number, cfg: LossConfig, flags: LossFlags): string {
  const names = metricNames(flags);
  const row = (r: number) => `tokenIn[${r * slots}u + i]`;
  const metric = (name: string, value: string) => `terms[${names.indexOf(name) * slots}u + i] = (${value}) * wm;`;
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> logp: array<f32>;
@group(0) @binding(1) var<storage, read> entropy: array<f32>;
@group(0) @binding(2) var<storage, read> tokenIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogp: array<f32>;
@group(0) @binding(4) var<storage, read_write> terms: array<f32>;
const LO = ${1 - cfg.epsilon};
const HI = ${1 + cfg.epsilonHigh};
${elementwiseEntry(slots)}
  let lp = logp[i];
  let old = ${flags.old ? row(INPUT_ROW.old) : 'lp'};
  let A = ${row(INPUT_ROW.advantage)};
  let wl = ${row(INPUT_ROW.lossWeight)};
  let wm = ${row(INPUT_ROW.metricWeight)};
  // Clipped surrogate.
  let c1 = exp(lp - old);
  let c2 = clamp(c1, LO, HI);
  var value = -min(c1 * A, c2 * A);
  var slope = 0.0;
  if (c1 * A <= c2 * A || (c1 >= LO && c1 <= HI)) { slope = -A * c1; }
  // Importance-sampling weight (multiplies the surrogate only).
  let isRatio = ${flags.behaviour ? `min(exp(old - ${row(INPUT_ROW.behaviour)}), ${cfg.importanceSamplingClipMax ?? 3.4e38})` : '1.0'};
  value *= isRatio;
  slope *= isRatio;
  // k3 KL to the reference.
  var kl = 0.0;
  ${flags.ref ? `{
    let d = ${row(INPUT_ROW.ref)} - lp;
    kl = exp(d) - d - 1.0;
    value += ${cfg.beta} * kl;
    slope += ${cfg.beta} * (1.0 - exp(d));
  }` : ''}
  dlogp[i] = wl * slope;
  terms[i] = wl * value;
  let low = select(0.0, 1.0, c1 < LO && A < 0.0);
  let high = select(0.0, 1.0, c1 > HI && A > 0.0);
  ${metric('entropy', 'entropy[i]')}
  ${metric('clip_ratio/low_mean', 'low')}
  ${metric('clip_ratio/high_mean', 'high')}
  ${metric('clip_ratio/region_mean', 'max(low, high)')}
  ${flags.ref ? metric('kl', 'kl') : ''}
  ${flags.behaviour ? metric('sampling/importance_sampling_ratio/mean', 'isRatio') : ''}
}
`;
}

/** sums[k] += Σ_i terms[k, i]: one workgroup per metric, a fixed summation order. */
export function sumRowsWgsl(rows: number, slots: number): string {
  return /* wgsl */ `@group(0) @binding(0) var<storage, read> terms: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var i = t; i < ${slots}u; i += 256u) { s += terms[wg.x * ${slots}u + i]; }
  red[t] = s;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u && wg.x < ${rows}u) { sums[wg.x] += red[0]; }
}
`;
}

export class GrpoLossKernel {
  private constructor(
    readonly names: string[],
    private readonly perToken: Kernel,
    private readonly sum: Kernel,
  ) {}

  static async create(ctx: GpuContext, slots: number, cfg: LossConfig, flags: LossFlags): Promise<GrpoLossKernel> {
    const names = metricNames(flags);
    const [perToken, sum] = await Promise.all([ctx.kernel(perTokenLossWgsl(slots, cfg, flags), elementwiseGrid(slots)), ctx.kernel(sumRowsWgsl(names.length, slots), [names.length])]);
    return new GrpoLossKernel(names, perToken, sum);
  }

  /** dlogp from logp; the weighted per-token terms summed into `sums` (accumulates over micro-batches). */
  dispatch(b: { logp: GPUBuffer; entropy: GPUBuffer; tokenIn: GPUBuffer; dlogp: GPUBuffer; terms: GPUBuffer; sums: GPUBuffer }): Dispatch[] {
    return [this.perToken.dispatch(b.logp, b.entropy, b.tokenIn, b.dlogp, b.terms), this.sum.dispatch(b.terms, b.sums)];
  }
}

/** Per-slot loss and metric weights of one micro-batch: the loss type's normaliser (see tfjs loss.ts),
 *  and 1/(counted tokens · micro-batches) for the metrics (each a masked mean averaged over micro-batches).
 *  `counted[b]` is row b's number of tokens in the loss (0 for a masked truncated row). */
export function lossWeights(
  cfg: LossConfig,
  counted: number[],
  slotsPerRow: number,
  o: { microBatches: number; numItemsInBatch: number },
): { loss: Float32Array; metric: Float32Array } {
  const B = counted.length;
  const tokens = Math.max(counted.reduce((a, b) => a + b, 0), 1);
  const loss = new Float32Array(B * slotsPerRow);
  const metric = new Float32Array(B * slotsPerRow);
  const ga = cfg.gradientAccumulationSteps * o.microBatches;
  counted.forEach((n, b) => {
    let w: number;
    switch (cfg.lossType) {
      case 'grpo': w = 1 / (Math.max(n, 1) * B * ga); break;
      case 'bnpo': w = 1 / (tokens * ga); break;
      case 'dr_grpo': w = 1 / (B * cfg.maxCompletionLength! * ga); break;
      case 'dapo': w = 1 / Math.max(o.numItemsInBatch, 1); break;
      default: throw new Error(`webgpu trainer: loss_type "${cfg.lossType as string}" is not computed on the device yet (grpo, bnpo, dr_grpo, dapo are)`);
    }
    for (let j = 0; j < n; j++) {
      loss[b * slotsPerRow + j] = w;
      metric[b * slotsPerRow + j] = 1 / (tokens * o.microBatches);
    }
  });
  return { loss, metric };
}
