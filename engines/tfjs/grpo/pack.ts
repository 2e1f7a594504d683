// Flattens a training batch into rows and packs rows into padded tensors for one forward pass.
// Layout per row: [left padding | prompt | completion | right padding], so every completion starts at
// the same column P (the longest prompt); hidden state at column P−1+t predicts completion token t.
import { tf } from '../tf.js';
import type { TrainingBatch } from '../../../core/ports.js';
import { completionOf, promptOf, rowCount, tokenValuesOf, type Rows, type TrainingRows } from '../../../core/engine/rows.js';
import { trainingRowsOf } from '../../../core/engine/training-rows.js';

/** One row of TrainingRows, as views into its arrays (nothing copied). */
export interface TrainingRow {
  /** Index in its TrainingRows. */
  index: number;
  group: number;
  promptIds: Int32Array;
  completionIds: Int32Array;
  /** The sampler's log-probs of completionIds (absent when the sampler did not record them). */
  behaviourLogprobs?: Float32Array;
  /** The base model's log-probs of completionIds, when the rollout computed them (Completion.refLogprobs). */
  refLogprobs?: Float32Array;
  truncated: boolean;
  advantage: number;
}

/** Each row of `rows` as views; rows without advantages (a scoring pass) get advantage 0. */
export function rowViews(rows: Rows | TrainingRows): TrainingRow[] {
  const training = 'advantages' in rows ? rows : undefined;
  return Array.from({ length: rowCount(rows) }, (_, i) => ({
    index: i,
    group: rows.group[i],
    promptIds: promptOf(rows, i),
    completionIds: completionOf(rows, i),
    behaviourLogprobs: training?.behaviourLogprobs && tokenValuesOf(rows, training.behaviourLogprobs, i),
    refLogprobs: training?.refLogprobs && tokenValuesOf(rows, training.refLogprobs, i),
    truncated: training ? training.truncated[i] === 1 : false,
    advantage: training ? training.advantages[i] : 0,
  }));
}

/** A training batch's rows, as views (see trainingRowsOf). */
export function flattenBatch(batch: TrainingBatch): TrainingRow[] {
  return rowViews(trainingRowsOf(batch));
}

export interface PackedRows {
  /** [b, P + C] token ids. */
  ids: tf.Tensor2D;
  /** [b, P + C] 1 for real tokens. */
  attentionMask: tf.Tensor2D;
  /** [b, P + C] positions from the mask (cumsum − 1; 0 on padding). */
  positions: tf.Tensor2D;
  /** [b, C] completion ids (padding = padTokenId). */
  targets: tf.Tensor2D;
  /** [b, C] 1 for completion tokens that count in the loss. */
  completionMask: tf.Tensor2D;
  /** [b] */
  advantages: tf.Tensor1D;
  promptLength: number;
  completionLength: number;
  dispose(): void;
}

/** Pads `values` per row to [rows, width] with `fill`. */
export function padRows(values: ArrayLike<number>[], width: number, fill = 0): Float32Array {
  const out = new Float32Array(values.length * width).fill(fill);
  values.forEach((row, i) => out.set(Array.from(row).slice(0, width), i * width));
  return out;
}

export function packRows(rows: TrainingRow[], options: { padTokenId: number; maskTruncatedCompletions: boolean }): PackedRows {
  const P = Math.max(...rows.map((r) => r.promptIds.length));
  // At least one column, so a batch of empty completions still has a (fully masked) shape.
  const C = Math.max(1, ...rows.map((r) => r.completionIds.length));
  const b = rows.length;
  const width = P + C;
  const ids = new Int32Array(b * width).fill(options.padTokenId);
  const attention = new Int32Array(b * width);
  const positions = new Int32Array(b * width);
  const targets = new Int32Array(b * C).fill(options.padTokenId);
  const completionMask = new Float32Array(b * C);
  rows.forEach((row, i) => {
    const start = i * width + P - row.promptIds.length;
    const length = row.promptIds.length + row.completionIds.length;
    ids.set(row.promptIds, start);
    ids.set(row.completionIds, start + row.promptIds.length);
    attention.fill(1, start, start + length);
    for (let j = 0; j < length; j++) positions[start + j] = j;
    targets.set(row.completionIds, i * C);
    const counts = !(options.maskTruncatedCompletions && row.truncated);
    if (counts) completionMask.fill(1, i * C, i * C + row.completionIds.length);
  });
  const packed = {
    ids: tf.tensor2d(ids, [b, width], 'int32'),
    attentionMask: tf.tensor2d(attention, [b, width], 'int32'),
    positions: tf.tensor2d(positions, [b, width], 'int32'),
    targets: tf.tensor2d(targets, [b, C], 'int32'),
    completionMask: tf.tensor2d(completionMask, [b, C]),
    advantages: tf.tensor1d(rows.map((r) => r.advantage)),
    promptLength: P,
    completionLength: C,
    dispose() {
      tf.dispose([packed.ids, packed.attentionMask, packed.positions, packed.targets, packed.completionMask, packed.advantages]);
    },
  };
  return packed;
}

/** Rows regrouped for a pass that computes each prompt once (CausalLM.sharedPrefixHidden). */
export interface SharedPromptRows {
  /** [G, P] the distinct prompts of these rows, left-padded. */
  prompts: tf.Tensor2D;
  promptMask: tf.Tensor2D;
  /** [B, C − 1] each row's completion tokens but the last, right-padded: the inputs that predict tokens 1…C−1. */
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
  /** Row → index into `prompts`. */
  group: number[];
  dispose(): void;
}

export function packSharedPrompts(rows: TrainingRow[], completionLength: number, padTokenId: number): SharedPromptRows {
  const local = new Map<number, number>();
  const prompts: Int32Array[] = [];
  const group = rows.map((row) => {
    if (!local.has(row.group)) {
      local.set(row.group, prompts.length);
      prompts.push(row.promptIds);
    }
    return local.get(row.group)!;
  });
  const P = Math.max(...prompts.map((p) => p.length));
  const promptIds = new Int32Array(prompts.length * P).fill(padTokenId);
  const promptMask = new Int32Array(prompts.length * P);
  prompts.forEach((p, i) => {
    promptIds.set(p, i * P + P - p.length);
    promptMask.fill(1, i * P + P - p.length, (i + 1) * P);
  });
  const width = completionLength - 1;
  const ids = new Int32Array(rows.length * width).fill(padTokenId);
  const mask = new Int32Array(rows.length * width);
  rows.forEach((row, i) => {
    const inputs = row.completionIds.slice(0, width);
    ids.set(inputs, i * width);
    mask.fill(1, i * width, i * width + inputs.length);
  });
  const packed = {
    prompts: tf.tensor2d(promptIds, [prompts.length, P], 'int32'),
    promptMask: tf.tensor2d(promptMask, [prompts.length, P], 'int32'),
    ids: tf.tensor2d(ids, [rows.length, width], 'int32'),
    mask: tf.tensor2d(mask, [rows.length, width], 'int32'),
    group,
    dispose() {
      tf.dispose([packed.prompts, packed.promptMask, packed.ids, packed.mask]);
    },
  };
  return packed;
}
