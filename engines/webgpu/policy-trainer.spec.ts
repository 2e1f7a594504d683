// The WebGPU trainer against the transformers/peft fixtures (llama-tiny: base, adapter, merged), the
// LoRA gradients against central finite differences of its own f32 forward, one GRPO step against the
// tfjs trainer on the same rows, and 50 steps on a steady buffer pool. Runs on lavapipe in CI.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { rowsOf, type Rows } from '../../core/engine/rows.js';
import type { StepRows } from '../../core/engine/interfaces.js';
import type { TrainStepConfig } from '../../core/grpo/loss-spec.js';
import { initBackend } from '../tfjs/backend.js';
import { loadPeftAdapter } from '../tfjs/lora.js';
import { loadModel } from '../tfjs/model-loader.js';
import { TfjsPolicyTrainer } from '../tfjs/policy-trainer.js';
import { WebGpuPolicyTrainer } from './policy-trainer.js';
import { NO_ADAPTER, random, testGpu } from './testing.js';
import { GpuLoraWeights, GpuModelWeights, readBuffers, type Precision } from './weights.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
const ctx = await testGpu();

interface ReferenceChat {
  ids: number[];
  greedy: number[];
  sequence_logprobs: number[];
}
const reference = JSON.parse(readFileSync(`${LLAMA_TINY}/reference.json`, 'utf8')) as Record<'chats' | 'adapter' | 'merged', ReferenceChat[]>;

/** Each chat as one row: the first token as prompt, the rest (ids + greedy) as completion, so the
 *  row's log-probs are the fixture's sequence_logprobs. */
function chatRows(chats: ReferenceChat[]): Rows {
  const all = chats.map((c) => [...c.ids, ...c.greedy]);
  return rowsOf(all.map((a) => a.slice(0, 1)), all.map((a) => a.slice(1)), all.map((_, i) => i));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Number.isFinite(a[i]) ? Math.abs(a[i] - b[i]) : Infinity);
  return m;
}

function fixtureTrainer(precision: Precision, adamEps?: number): WebGpuPolicyTrainer {
  const base = GpuModelWeights.fromCheckpoint(ctx!, LLAMA_TINY, precision);
  const lora = GpuLoraWeights.fromPeftFolder(ctx!, base, `${LLAMA_TINY}/adapter`);
  // One pass shape for every test here (3 rows × 208 positions × 208 completion slots): lavapipe
  // compiles each new kernel shape slowly, so all tests share one set of kernels.
  return new WebGpuPolicyTrainer(ctx!, base, lora, { bucket: 208, adamEps });
}

function disposeTrainer(t: WebGpuPolicyTrainer): void {
  t.dispose();
  t.lora.destroy();
  t.base.destroy();
}

describe.skipIf(!ctx)(`webgpu policy trainer${ctx ? '' : ` (${NO_ADAPTER})`}`, () => {
  const trainer = ctx ? fixtureTrainer('f32') : undefined;
  afterAll(() => trainer && disposeTrainer(trainer));

  it('precision f32: log-probs match transformers/peft within 1e-4 (base = adapters off, adapter, merged = adapters on)', async () => {
    for (const [variant, adapters] of [['chats', 'off'], ['adapter', 'on'], ['merged', 'on']] as const) {
      const chats = reference[variant];
      const rows = chatRows(chats);
      // The three chats (85 to 197 tokens) in one padded micro-batch: padding is part of what is checked.
      const logprobs = await trainer!.score(rows, { adapters, temperature: 1, microBatchSize: 3 });
      const expected = chats.flatMap((c) => c.sequence_logprobs);
      expect(logprobs.length).toBe(expected.length);
      const error = maxAbsDiff(logprobs, expected);
      console.log(`webgpu f32 ${variant}: max |log-prob − transformers| = ${error.toExponential(2)} over ${expected.length} tokens`);
      expect(error, variant).toBeLessThan(1e-4);
    }
  });

  /** Three rows of the fixture's tokens (lengths within the one pass shape), with advantages, old
   *  log-probs near the current ones (so the clipped ratio moves with the weights) and behaviour log-probs. */
  async function stepRows(t: WebGpuPolicyTrainer, seed: number): Promise<StepRows> {
    const rnd = random(seed);
    const chats = reference.adapter;
    const all = chats.map((c) => [...c.ids, ...c.greedy]);
    const rows = rowsOf([all[0].slice(0, 20), all[1].slice(0, 9), all[2].slice(0, 30)], [all[0].slice(20, 120), all[1].slice(9, 80), all[2].slice(30, 170)], [0, 1, 2]); // distinct prompts: one group each
    const current = await t.score(rows, { adapters: 'on', temperature: 1, microBatchSize: 3 });
    return {
      ...rows,
      advantages: Float32Array.from([0.9, -0.7, 0.4]),
      truncated: Uint8Array.from([0, 1, 0]),
      oldLogprobs: current.map((v) => v + 0.05 * rnd()),
      behaviourLogprobs: current.map((v) => v + 0.2 * rnd()),
    };
  }

  const SPEC: TrainStepConfig = { learningRate: 0, beta: 0.04, lossType: 'grpo', microBatchSize: 3, importanceSamplingCorrection: true, importanceSamplingMode: 'token_truncate', importanceSamplingClipMax: 2, maxGradNorm: 0 };

  it('LoRA gradients match central finite differences of the f32 loss', async () => {
    const rows = await stepRows(trainer!, 7);
    const before = await trainer!.weights();
    await trainer!.step(rows, SPEC);
    const adapters = [...trainer!.lora.adapters.values()];
    const grads = await readBuffers(ctx!, adapters.flatMap((a) => [a.gradA, a.gradB]));
    // The largest entries of a few tensors (A and B of attention and MLP projections, both layers).
    const probes: { name: string; index: number; analytic: number }[] = [];
    adapters.forEach((a, i) => {
      if (![0, 4, 13].includes(i)) return;
      const names = GpuLoraWeights.names(a.path);
      for (const [name, raw] of [[names.a, grads[2 * i]], [names.b, grads[2 * i + 1]]] as const) {
        const g = new Float32Array(raw);
        let best = 0;
        for (let k = 1; k < g.length; k++) if (Math.abs(g[k]) > Math.abs(g[best])) best = k;
        probes.push({ name, index: best, analytic: g[best] });
      }
    });
    const h = 1e-3;
    const lossAt = async (name: string, index: number, delta: number) => {
      const weights = structuredClone(before.weights);
      weights[name].data[index] += delta;
      trainer!.lora.set(weights);
      return (await trainer!.step(rows, SPEC)).loss;
    };
    for (const p of probes) {
      const numeric = ((await lossAt(p.name, p.index, h)) - (await lossAt(p.name, p.index, -h))) / (2 * h);
      expect(Math.abs(numeric - p.analytic) / Math.abs(p.analytic), `${p.name}[${p.index}]: ${p.analytic} vs ${numeric}`).toBeLessThan(2e-2);
    }
    trainer!.lora.set(before.weights);
  });

  it('one GRPO step (KL, IS correction, clipping, grpo normalisation) equals the tfjs trainer on the same rows', async () => {
    await initBackend('cpu');
    const rows = await stepRows(trainer!, 11);
    const spec: TrainStepConfig = { ...SPEC, learningRate: 0.1, maxGradNorm: 0.5 };
    const model = await loadModel(LLAMA_TINY);
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    // AdamW's eps far above |g|: the first update is then lr·g/(|g| + eps), continuous in g, so the
    // weights after the step compare the gradients entry by entry (with eps 1e-8 it is lr·sign(g)).
    const reference = new TfjsPolicyTrainer(model, { learningRate: 0.1, adamEps: 1 });
    const gpuTrainer = fixtureTrainer('f32', 1);
    const gpuMetrics = await gpuTrainer.step(rows, spec);
    const tfjsMetrics = await reference.step(rows, spec);
    for (const name of ['loss', 'grad_norm', 'kl', 'entropy', 'sampling/importance_sampling_ratio/mean', 'clip_ratio/region_mean', 'completions/clipped_ratio', 'num_tokens']) {
      expect(Math.abs(gpuMetrics[name] - tfjsMetrics[name]), `${name}: ${gpuMetrics[name]} vs ${tfjsMetrics[name]}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(tfjsMetrics[name])));
    }
    expect(gpuMetrics.grad_norm).toBeGreaterThan(0.5); // the clip was active
    const gpu = (await gpuTrainer.weights()).weights;
    const tfjs = (await reference.weights()).weights;
    const initial = (await trainer!.weights()).weights;
    for (const name of Object.keys(tfjs)) {
      expect(maxAbsDiff(gpu[name].data, initial[name].data), `${name} moved`).toBeGreaterThan(1e-4);
      expect(maxAbsDiff(gpu[name].data, tfjs[name].data), name).toBeLessThan(1e-6);
    }
    reference.dispose();
    model.dispose();
    disposeTrainer(gpuTrainer);
  });

  it('50 steps run on a steady buffer pool (live GPU buffers and bytes flat after the first step)', async () => {
    const t = fixtureTrainer('f32');
    try {
      const rows = await stepRows(t, 3);
      const spec: TrainStepConfig = { ...SPEC, learningRate: 1e-4, maxGradNorm: 1 };
      await t.step(rows, spec);
      const held = { buffers: ctx!.liveBuffers, bytes: ctx!.allocatedBytes };
      let last: Record<string, number> = {};
      for (let s = 1; s < 50; s++) last = await t.step(rows, spec);
      expect({ buffers: ctx!.liveBuffers, bytes: ctx!.allocatedBytes }).toEqual(held);
      expect(t.version).toBe(50);
      expect(Number.isFinite(last.loss) && Number.isFinite(last.grad_norm)).toBe(true);
      // save/restore round trip: weights, moments and step.
      const saved = await t.save();
      const again = await t.save();
      t.restore(saved);
      expect(t.version).toBe(50);
      expect((await t.save()).optimizer).toEqual(again.optimizer);
    } finally {
      disposeTrainer(t);
    }
  });
});
