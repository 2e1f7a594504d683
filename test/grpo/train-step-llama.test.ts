// The train step on the real llama-tiny fixture: completion log-probs through the padded batch match
// transformers/peft's reference numbers, the GRPO-loss gradient on LoRA parameters matches finite
// differences, and a step changes only LoRA variables.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import { attachLora, loadPeftAdapter } from '../../engines/tfjs/lora.js';
import { AdamW } from '../../engines/tfjs/grpo/optimizer.js';
import { computeRowLogprobs, grpoTrainStep, type TrainStepConfig } from '../../engines/tfjs/grpo/train-step.js';
import { referenceLogprobs } from '../../engines/tfjs/grpo/reference-logprobs.js';
import type { Completion, TrainingBatch } from '../../core/ports.js';
import { readFileSync } from 'node:fs';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
/** reference.json (see /work/shared/README.md): per chat, prompt ids, greedy continuation, and
 *  sequence_logprobs[i] = log p(token i+1 | tokens ≤ i) over ids + greedy, from transformers/peft. */
interface ReferenceChat {
  ids: number[];
  greedy: number[];
  sequence_logprobs: number[];
}
const reference = JSON.parse(readFileSync(`${LLAMA_TINY}/reference.json`, 'utf8')) as { chats: ReferenceChat[]; adapter: ReferenceChat[] };
let model: CausalLM;

beforeAll(async () => {
  await initBackend('cpu');
  model = await loadModel(LLAMA_TINY);
});
afterAll(() => model?.dispose());

const completionOf = (chat: ReferenceChat): Completion => {
  const start = chat.ids.length - 1; // sequence_logprobs[i] = log p(token i+1 | ≤ i)
  return {
    text: '',
    ids: chat.greedy,
    logprobs: chat.sequence_logprobs.slice(start, start + chat.greedy.length),
    finishReason: 'eos',
  };
};

/**
 * Three prompts of different lengths (185, 73, 170 tokens); per prompt: the adapter's and the base
 * model's greedy continuations. `promptTail` keeps only the prompts' last tokens (8, 16, 24 of them),
 * for the checks that need no reference numbers and many passes.
 */
function referenceBatch(promptTail?: number): TrainingBatch {
  return {
    index: 0,
    policyVersion: 0,
    groups: reference.chats.map((chat, g) => ({
      prompt: { id: `chat${g}`, messages: [], fields: {} },
      promptText: '',
      promptIds: promptTail ? chat.ids.slice(-promptTail * (g + 1)) : chat.ids,
      completions: [completionOf(reference.adapter[g]), completionOf(chat)],
    })),
    rewards: [{ name: 'r', weight: 1, values: [[1, 0], [0.5, 0], [0, 1]] }],
    totals: [[1, 0], [0.5, 0], [0, 1]],
    advantages: [[0.7, -0.7], [0.7, -0.7], [-0.7, 0.7]],
  };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));

describe('GRPO train step on llama-tiny', () => {
  it('completion log-probs of a left-padded mixed batch match the transformers/peft reference (1e-4)', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const batch = referenceBatch();
    const config: TrainStepConfig = { learningRate: 0 };
    const withAdapter = await computeRowLogprobs(model, batch, config);
    const base = await model.withAdaptersDisabled(() => computeRowLogprobs(model, batch, config));
    batch.groups.forEach((group, g) => {
      // Row 2g holds the adapter's greedy tokens (reference: `adapter`), row 2g+1 the base model's (`chats`).
      expect(maxDiff(withAdapter[2 * g], group.completions[0].logprobs)).toBeLessThan(1e-4);
      expect(maxDiff(base[2 * g + 1], group.completions[1].logprobs)).toBeLessThan(1e-4);
    });
  });

  it('the gradient of the GRPO loss w.r.t. LoRA parameters matches central finite differences', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const batch = referenceBatch(8);
    const variables = model.trainableVariables();
    // Fixed old log-probs (shifted so some ratios clip) make the loss a function of the parameters.
    const old = (await computeRowLogprobs(model, batch, { learningRate: 0 })).map((row) => row.map((v, t) => v + (t % 3 === 0 ? 0.3 : -0.05)));
    const config: TrainStepConfig = { learningRate: 0, beta: 0.05, maxGradNorm: 0, epsilon: 0.2 };
    const lossAndGrads = async () => {
      const optimizer = new AdamW(variables);
      const { metrics } = await grpoTrainStep(model, batch, optimizer, config, { oldLogprobs: old });
      // With lr 0 nothing moves, and after one step m = (1 − β1)·g holds the gradient.
      const grads = (await optimizer.exportState()).m.map((m) => m.map((v) => v / 0.1));
      optimizer.dispose();
      return { loss: metrics.loss, grads, clipped: metrics['clip_ratio/region_mean'] };
    };
    const { grads, clipped } = await lossAndGrads();
    expect(clipped).toBeGreaterThan(0);
    // Check the largest-gradient element of the first A matrix and of the last B matrix.
    const checks: [number, number][] = [];
    for (const v of [0, variables.length - 1]) {
      let best = 0;
      grads[v].forEach((g, i) => (Math.abs(g) > Math.abs(grads[v][best]) ? (best = i) : undefined));
      checks.push([v, best]);
    }
    const h = 5e-3;
    for (const [v, i] of checks) {
      const variable = variables[v];
      const original = variable.dataSync().slice() as Float32Array;
      const at = async (delta: number) => {
        const data = original.slice();
        data[i] += delta;
        variable.assign(tf.tensor(data, variable.shape));
        return (await lossAndGrads()).loss;
      };
      const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
      variable.assign(tf.tensor(original, variable.shape));
      const analytic = grads[v][i];
      expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
      expect(Math.abs(numeric - analytic)).toBeLessThan(0.03 * Math.abs(analytic) + 2e-4);
    }
  });

  it('computing each prompt once (shared prompt pass) gives the same log-probs and LoRA gradients as the packed rows', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const batch = referenceBatch(); // prompts of 185, 73 and 170 tokens; micro-batches of 3 split groups 1 and 2
    const variables = model.trainableVariables();
    const run = async (sharePromptPass: boolean, microBatchSize = 3) => {
      const config: TrainStepConfig = { learningRate: 0, beta: 0.05, maxGradNorm: 0, microBatchSize, sharePromptPass };
      const logprobs = await computeRowLogprobs(model, batch, config);
      const optimizer = new AdamW(variables);
      const { metrics } = await grpoTrainStep(model, batch, optimizer, config);
      const grads = (await optimizer.exportState()).m;
      optimizer.dispose();
      return { logprobs, grads, metrics };
    };
    const shared = await run(true);
    const packed = await run(false);
    shared.logprobs.forEach((row, r) => expect(maxDiff(row, packed.logprobs[r]), `row ${r}`).toBeLessThan(1e-5));
    // and both match the transformers/peft reference, as the packed path is checked to above
    batch.groups.forEach((group, g) => expect(maxDiff(shared.logprobs[2 * g], group.completions[0].logprobs)).toBeLessThan(1e-4));
    let largest = 0;
    shared.grads.forEach((g) => g.forEach((v) => (largest = Math.max(largest, Math.abs(v)))));
    expect(largest).toBeGreaterThan(0);
    shared.grads.forEach((g, i) => expect(maxDiff(g, packed.grads[i]), `variable ${i}`).toBeLessThan(1e-5 * largest + 1e-9));
    for (const name of ['loss', 'kl', 'entropy']) expect(shared.metrics[name]).toBeCloseTo(packed.metrics[name], 5);
    // Micro-batches of one prompt each.
    const single = await run(true, 2);
    single.logprobs.forEach((row, r) => expect(maxDiff(row, packed.logprobs[r]), `row ${r}`).toBeLessThan(1e-5));
  });

  it('for each of the seven projections, the gradient over all its lora_A and lora_B matrices matches a directional finite difference', async () => {
    // The element check above samples two matrices; a wrong gradient in one projection only (GQA's k/v,
    // the MLP's gate) would slip past it. Here: every projection, every layer, A and B separately, along a
    // fixed pseudo-random direction d: (L(θ + h·d) − L(θ − h·d)) / 2h against Σ g·d.
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const lora = model.lora!;
    const batch = referenceBatch(8);
    const variables = model.trainableVariables();
    const old = (await computeRowLogprobs(model, batch, { learningRate: 0 })).map((row) => row.map((v, t) => v + (t % 3 === 0 ? 0.3 : -0.05)));
    const config: TrainStepConfig = { learningRate: 0, beta: 0.05, maxGradNorm: 0, epsilon: 0.2, microBatchSize: 3 };
    const lossAndGrads = async () => {
      const optimizer = new AdamW(variables);
      const { metrics } = await grpoTrainStep(model, batch, optimizer, config, { oldLogprobs: old });
      const grads = (await optimizer.exportState()).m.map((m) => m.map((v) => v / 0.1));
      optimizer.dispose();
      return { loss: metrics.loss, grads };
    };
    const { grads } = await lossAndGrads();
    const originals = variables.map((v) => v.dataSync().slice() as Float32Array);
    const h = 1e-2;
    let seed = 1;
    const nextDirection = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
    const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
    for (const projection of projections) {
      for (const matrix of ['A', 'B'] as const) {
        const chosen = [...lora.adapters.entries()].filter(([path]) => path.endsWith(projection)).map(([, a]) => variables.indexOf(a[matrix]));
        expect(chosen.length, projection).toBe(2); // both layers
        const direction = chosen.map((i) => Float32Array.from(originals[i], () => nextDirection()));
        let analytic = 0;
        chosen.forEach((i, k) => direction[k].forEach((d, j) => (analytic += d * grads[i][j])));
        const lossAt = async (step: number) => {
          chosen.forEach((i, k) => variables[i].assign(tf.tensor(originals[i].map((x, j) => x + step * direction[k][j]), variables[i].shape)));
          return (await lossAndGrads()).loss;
        };
        const numeric = ((await lossAt(h)) - (await lossAt(-h))) / (2 * h);
        chosen.forEach((i) => variables[i].assign(tf.tensor(originals[i], variables[i].shape)));
        expect(Math.abs(analytic), `${projection} lora_${matrix}`).toBeGreaterThan(1e-4);
        expect(Math.abs(numeric - analytic), `${projection} lora_${matrix}: analytic ${analytic}, numeric ${numeric}`).toBeLessThan(0.03 * Math.abs(analytic) + 1e-5);
      }
    }
  });

  it('reference log-probs computed where the completions are sampled: the base model\'s (transformers reference), and the trainer uses them as its own', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const batch = referenceBatch();
    // With the adapter loaded, the reference is the base model: for the base's greedy continuations
    // (member 1) that is transformers' sequence_logprobs of the base model.
    const flat = await referenceLogprobs(
      model,
      batch.groups.flatMap((g) => g.completions.map(() => g.promptIds)),
      batch.groups.flatMap((g) => g.completions.map((c) => c.ids)),
      { temperature: 1, microBatchSize: 4 },
    );
    const refs = batch.groups.map((group, g) => group.completions.map((_, j) => flat[g * group.completions.length + j]));
    batch.groups.forEach((group, g) => expect(maxDiff(refs[g][1], group.completions[1].logprobs), `group ${g}`).toBeLessThan(1e-4));
    // ... and the adapters are on again afterwards: the adapted log-probs of the adapter's continuations.
    const adapted = await computeRowLogprobs(model, batch, { learningRate: 0 });
    batch.groups.forEach((group, g) => expect(maxDiff(adapted[2 * g], group.completions[0].logprobs)).toBeLessThan(1e-4));

    const variables = model.trainableVariables();
    const step = async (b: TrainingBatch) => {
      const before = variables.map((v) => v.dataSync().slice());
      const optimizer = new AdamW(variables);
      const { metrics } = await grpoTrainStep(model, b, optimizer, { learningRate: 1e-3, beta: 0.05, microBatchSize: 3 });
      const after = variables.map((v) => v.dataSync().slice());
      optimizer.dispose();
      variables.forEach((v, i) => v.assign(tf.tensor(before[i], v.shape)));
      return { metrics, after };
    };
    const own = await step(batch);
    const withRefs: TrainingBatch = {
      ...batch,
      groups: batch.groups.map((group, g) => ({ ...group, completions: group.completions.map((c, j) => ({ ...c, refLogprobs: refs[g][j] })) })),
    };
    const given = await step(withRefs);
    expect(own.metrics.kl).toBeGreaterThan(0);
    for (const name of ['loss', 'kl']) expect(given.metrics[name], name).toBeCloseTo(own.metrics[name], 6);
    given.after.forEach((v, i) => expect(maxDiff(v, own.after[i]), `variable ${i}`).toBeLessThan(1e-6));
    // Wrong reference log-probs are used, not silently recomputed.
    const shifted: TrainingBatch = { ...withRefs, groups: withRefs.groups.map((group) => ({ ...group, completions: group.completions.map((c) => ({ ...c, refLogprobs: c.refLogprobs!.map((v) => v - 1) })) })) };
    expect((await step(shifted)).metrics.kl).not.toBeCloseTo(own.metrics.kl, 3);
    const short: TrainingBatch = { ...withRefs, groups: withRefs.groups.map((group) => ({ ...group, completions: group.completions.map((c) => ({ ...c, refLogprobs: c.refLogprobs!.slice(1) })) })) };
    await expect(step(short)).rejects.toThrow(/reference log-probs for/);
  });

  it('one step with a fresh LoRA (attachLora) changes only LoRA B (A has zero gradient while B = 0), never the base; no leaks', async () => {
    attachLora(model, { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'], useRslora: false, seed: 3 });
    const batch = referenceBatch(8);
    const variables = model.trainableVariables();
    const before = variables.map((v) => v.dataSync().slice());
    const baseBefore = await model.withAdaptersDisabled(() => computeRowLogprobs(model, batch, { learningRate: 0 }));
    const optimizer = new AdamW(variables);
    const config: TrainStepConfig = { learningRate: 1e-2, beta: 0.04, microBatchSize: 3 };
    const { metrics } = await grpoTrainStep(model, batch, optimizer, config);
    for (const name of ['loss', 'kl', 'entropy', 'grad_norm', 'num_tokens']) expect(Number.isFinite(metrics[name]), name).toBe(true);
    expect(metrics.kl).toBe(0); // B = 0: the adapted policy is the base policy
    const lora = model.lora!;
    const names = [...lora.adapters.values()].flatMap((a) => [a.A.name, a.B.name]);
    variables.forEach((v, i) => {
      const moved = maxDiff(v.dataSync(), before[i]);
      if (names[i] === v.name && i % 2 === 1) expect(moved, `${v.name} (B)`).toBeGreaterThan(0);
      else expect(moved, `${v.name} (A)`).toBe(0);
    });
    const baseAfter = await model.withAdaptersDisabled(() => computeRowLogprobs(model, batch, { learningRate: 0 }));
    baseAfter.forEach((row, r) => expect(Array.from(row)).toEqual(Array.from(baseBefore[r])));
    const adapted = await computeRowLogprobs(model, batch, { learningRate: 0 });
    expect(maxDiff(adapted[0], baseAfter[0])).toBeGreaterThan(0);

    await grpoTrainStep(model, batch, optimizer, config);
    const tensors = tf.memory().numTensors;
    const { metrics: third } = await grpoTrainStep(model, batch, optimizer, config);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(third.kl).toBeGreaterThan(0);
    optimizer.dispose();
  });
});
