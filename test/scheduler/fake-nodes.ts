// Nodes for the scheduling tests: a prompt source, and a trainer stand-in that takes rollout batches
// straight from rollout.generate, "trains" under the model lock for a set time (nudging the LoRA
// weights so every version differs), and feeds the policy back — announcing its start first, as
// train.grpo does. It records the step each batch met, so the tests can check the staleness bound.
import { concat, defer, EMPTY, from, ignoreElements, Subject } from 'rxjs';
import { z } from 'zod';
import { tf } from '../../engines/tfjs/tf.js';
import { loadLoraSnapshot, loraSnapshot, type LoraSnapshot } from '../../engines/tfjs/lora.js';
import type { CausalLM } from '../../engines/tfjs/model.js';
import { tfjsModel } from '../../engines/tfjs/model-engine.js';
import { defineNode, definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { GroupFilter } from '../../core/grpo/dynamic-sampling.js';
import { ports, type PolicySnapshot, type PromptRecord, type RolloutBatch, type TrainingBatch } from '../../core/ports.js';
import { fromIterableWithBackpressure } from '../../core/runtime/operators/from-iterable.js';
import { mapAsync } from '../../core/runtime/operators/map-async.js';

export interface TrainedBatch {
  index: number;
  policyVersion: number;
  /** The trainer's optimiser step when it took the batch. */
  step: number;
}
export interface SchedulerProbe {
  trained: TrainedBatch[];
  /** With verify_behaviour: the largest |behaviour log-prob − log-prob under the stamped version's weights|. */
  behaviourError?: number;
}
const probeOf = (services: Record<string, unknown>) => services.probe as SchedulerProbe;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const fakePrompts = defineNode({
  type: 'prompts',
  version: 1,
  inputs: {},
  outputs: { prompts: { type: ports.prompts } },
  config: z.strictObject({ n: z.number().int().min(1), broken_at: z.number().int().optional() }),
  run(ctx) {
    const records: PromptRecord[] = Array.from({ length: ctx.config.n }, (_, i) => ({
      id: `p${i}`,
      // A record the chat template cannot render makes the generator fail there.
      messages: i === ctx.config.broken_at ? (null as unknown as PromptRecord['messages']) : [{ role: 'user', content: `What is ${i} + ${i}?` }],
      fields: { answer: String(2 * i) },
    }));
    return { prompts: fromIterableWithBackpressure(records, () => ctx.outputReady()) };
  },
});

export const fakeTrainer = defineNode({
  type: 'trainer',
  version: 1,
  inputs: { model: { type: ports.model }, rollouts: { type: ports.rollouts } },
  outputs: { policy: { type: ports.policy } },
  config: z.strictObject({
    step_ms: z.number().min(0).default(0),
    steps_per_batch: z.number().int().min(1).default(1),
    fail_at_batch: z.number().int().optional(),
    /** Recompute each batch's log-probs with the weights of the version it is stamped with. */
    verify_behaviour: z.boolean().default(false),
    max_batches: z.number().int().optional(),
    /** Dynamic sampling with train.grpo's GroupFilter: prompts with an odd number get equal rewards (dropped). */
    filter_groups: z.boolean().default(false),
  }),
  run(ctx, inputs) {
    const c = ctx.config;
    const model = tfjsModel(inputs.model);
    const probe = probeOf(ctx.services);
    const policy$ = new Subject<PolicySnapshot>();
    let step = 0;
    let batches = 0;
    const versions = new Map<number, LoraSnapshot>();
    const filter = c.filter_groups ? new GroupFilter({ promptsPerStep: 1, maxGenBatches: 0 }) : undefined;
    const announce = () => {
      if (c.verify_behaviour) versions.set(step, copyOf(loraSnapshot(model)));
      policy$.next({ version: step, weights: loraSnapshot(model), stepsPerBatch: c.steps_per_batch, ...(filter ? { extraBatches: filter.extraBatches } : {}) });
    };
    const nudge = () =>
      tf.tidy(() => {
        for (const a of model.lora!.adapters.values()) a.B.assign(tf.add(a.B, 0.01));
      });
    const train$ = inputs.rollouts.pipe(
      mapAsync((batch) =>
        defer(async () => {
          if (c.max_batches !== undefined && batches >= c.max_batches) return;
          probe.trained.push({ index: batch.index, policyVersion: batch.policyVersion, step });
          if (batch.index === c.fail_at_batch) throw new Error(`trainer exploded on batch ${batch.index}`);
          if (c.verify_behaviour) {
            const error = behaviourError(model, batch, versions.get(batch.policyVersion)!);
            probe.behaviourError = Math.max(probe.behaviourError ?? 0, error);
          }
          // Not full yet: announce the extra draw (as train.grpo does) and take the next batch.
          if (filter && !filter.add(scoredByParity(batch))) return announce();
          for (let i = 0; i < c.steps_per_batch; i++) {
            await sleep(c.step_ms);
            nudge();
            step++;
            announce();
          }
          batches++;
          if (c.max_batches !== undefined && batches >= c.max_batches) policy$.complete();
        }),
      ),
      ignoreElements(),
    );
    const done = concat(
      defer(() => {
        announce();
        return EMPTY;
      }),
      train$,
      defer(() => from([policy$.complete()]).pipe(ignoreElements())),
    );
    return { policy: policy$, done };
  },
});

/** The batch with rewards: [1, 1] (no spread) for an odd prompt number, [0, 1] for an even one. */
function scoredByParity(batch: RolloutBatch): TrainingBatch {
  const totals = batch.groups.map((g) => g.completions.map((_, c) => (Number(g.prompt.id.slice(1)) % 2 === 1 ? 1 : c)));
  return { ...batch, rewards: [{ name: 'parity', weight: 1, values: totals }], totals, advantages: totals.map((t) => t.map(() => 0)) };
}

function copyOf(snapshot: LoraSnapshot): LoraSnapshot {
  return Object.fromEntries(Object.entries(snapshot).map(([name, t]) => [name, { shape: [...t.shape], data: t.data.slice() }]));
}

/** Scores each completion with the weights of `version` (restoring the current ones after). */
function behaviourError(model: CausalLM, batch: RolloutBatch, version: LoraSnapshot): number {
  const current = copyOf(loraSnapshot(model));
  let worst = 0;
  try {
    tf.tidy(() => loadLoraSnapshot(model, version));
    for (const group of batch.groups) {
      for (const completion of group.completions) {
        const ids = [...group.promptIds, ...completion.ids];
        const logprobs = tf.tidy(() => tf.logSoftmax(model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'))).arraySync() as number[][][]);
        completion.ids.forEach((id, j) => {
          worst = Math.max(worst, Math.abs(logprobs[0][group.promptIds.length - 1 + j][id] - completion.logprobs[j]));
        });
      }
    }
  } finally {
    tf.tidy(() => loadLoraSnapshot(model, current));
  }
  return worst;
}

export const schedulerTestPlugin = definePlugin({ name: 'sched', apiVersion: PLUGIN_API_VERSION, nodes: [fakePrompts, fakeTrainer] });
