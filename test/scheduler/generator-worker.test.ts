// The worker host (core/scheduler/engine-worker.ts) running the tfjs engine: the same tokens and
// log-probs as the engine on the main thread for the same seed and weights, weights followed through
// setWeights (copied, the caller's arrays stay usable), score against the main thread's, errors with the
// worker's message and stack, cancellation within a token, and a clean shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engines/tfjs/backend.js';
import { tf } from '../../engines/tfjs/tf.js';
import { loadPeftAdapter, loraSnapshot, type LoraSnapshot } from '../../engines/tfjs/lora.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import type { CausalLM } from '../../engines/tfjs/model.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { EngineWorker } from '../../core/scheduler/engine-worker.js';
import { mainThreadEngine, tfjsRolloutEngine } from '../../engines/tfjs/index.js';
import { completionOf, rowCount } from '../../core/engine/rows.js';
import type { RolloutEngine, SampledRows } from '../../core/engine/interfaces.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';

let model: CausalLM;
let tokenizer: Tokenizer;
let worker: EngineWorker;
let local: RolloutEngine;

const prompts = [
  [1000, 17, 42, 99],
  [1000, 5, 6],
  [1000, 300, 301, 302, 303],
];
const options = { maxNewTokens: 6, seed: 11, temperature: 1, topK: 50, maxBatch: 2 };

/** The adapter with every lora_B scaled: a different policy. */
function scaled(snapshot: LoraSnapshot, factor: number): LoraSnapshot {
  return Object.fromEntries(
    Object.entries(snapshot).map(([name, t]) => [name, { shape: t.shape, data: name.includes('lora_B') ? t.data.map((v) => v * factor) : t.data.slice() }]),
  );
}

const ids = (rows: SampledRows) => Array.from({ length: rowCount(rows) }, (_, i) => Array.from(completionOf(rows, i)));

function expectSameSamples(remote: SampledRows, here: SampledRows): void {
  expect(ids(remote)).toEqual(ids(here));
  expect(remote.texts).toEqual(here.texts);
  expect(remote.finishReasons).toEqual(here.finishReasons);
  expect(remote.logprobs.length).toBe(here.logprobs.length);
  remote.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(here.logprobs[j], 5));
}

beforeAll(async () => {
  await initBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  loadPeftAdapter(model, `${LLAMA_TINY}/adapter`); // non-zero lora_B, so the adapter changes the samples
  tokenizer = await Tokenizer.fromDir(LLAMA_TINY);
  worker = await EngineWorker.start(tfjsRolloutEngine, { model, tokenizer, thread: 'worker', backend: 'cpu' });
  local = mainThreadEngine(model, tokenizer);
});

afterAll(async () => {
  await worker?.close();
  await local?.close();
  model?.dispose();
});

describe('the tfjs engine in a worker thread', () => {
  it('samples the same tokens and log-probs as on the main thread, for the initial and a shipped policy', async () => {
    const here = await local.sample(prompts, 2, options);
    const remote = await worker.sample(prompts, 2, options);
    expect(remote.policyVersion).toBe(0);
    expectSameSamples(remote, here);

    // A new policy: the worker follows it, the caller's arrays stay attached (copied, not transferred).
    const next = { version: 4, weights: scaled(loraSnapshot(model), 3) };
    await Promise.all([worker.setWeights(next), local.setWeights(next)]);
    expect(Object.values(next.weights).every((t) => t.data.byteLength > 0)).toBe(true);
    const hereNext = await local.sample(prompts, 2, options);
    const remoteNext = await worker.sample(prompts, 2, options);
    expect(remoteNext.policyVersion).toBe(4);
    expectSameSamples(remoteNext, hereNext);
    expect(ids(remoteNext)).not.toEqual(ids(remote));
  });

  it('scores rows as the main thread does, with the adapters on and off; `reference` returns the base model\'s log-probs', async () => {
    // 'tempered' log-probs (of logits / 1, before top-k): what score() computes, so the two can be compared.
    const sampled = await worker.sample(prompts, 1, { ...options, logprobMode: 'tempered', reference: { temperature: 1 } });
    for (const adapters of ['on', 'off'] as const) {
      const remote = await worker.score(sampled, { adapters, temperature: 1 });
      const here = await local.score(sampled, { adapters, temperature: 1 });
      expect(remote).toBeInstanceOf(Float32Array);
      remote.forEach((lp, j) => expect(lp).toBeCloseTo(here[j], 5));
      if (adapters === 'off') sampled.refLogprobs!.forEach((lp, j) => expect(lp).toBeCloseTo(here[j], 5));
      if (adapters === 'on') sampled.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(here[j], 4));
    }
    // the base model's, not the adapted policy's that sampled them
    expect(sampled.refLogprobs!.some((lp, k) => Math.abs(lp - sampled.logprobs[k]) > 1e-3)).toBe(true);
    expect((await worker.sample(prompts, 1, options)).refLogprobs).toBeUndefined();
  });

  it('with `merged`, samples the same tokens from the adapter folded into the weights (worker and main thread)', async () => {
    const plain = await worker.sample(prompts, 1, options);
    const merged = await worker.sample(prompts, 1, { ...options, merged: true });
    expect(ids(merged)).toEqual(ids(plain));
    merged.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(plain.logprobs[j], 4));
    expect(Array.from((await worker.sample(prompts, 1, options)).logprobs)).toEqual(Array.from(plain.logprobs));

    const before = model.weights.layers[0].proj.q_proj.weightT;
    const products = async (merge: boolean) => {
      let sampledIds: number[][] = [];
      const { kernels } = await tf.profile(async () => {
        sampledIds = ids(await local.sample(prompts, 1, { ...options, merged: merge }));
      });
      expect(sampledIds).toEqual(ids(plain));
      return kernels.filter((k) => k.name === 'BatchMatMul').length;
    };
    expect(await products(true)).toBeLessThan((await products(false)) / 2); // no adapter products per token
    expect(model.weights.layers[0].proj.q_proj.weightT).toBe(before);
    expect(model.lora!.merged).toBe(false);
  });

  it('rejects a bad request with the worker-side message and stack, and keeps serving', async () => {
    const broken = loraSnapshot(model);
    delete broken[Object.keys(broken)[0]];
    const error = await worker.setWeights({ version: 5, weights: broken }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/rollout engine tfjs \(worker thread\): policy version 5: missing tensor "base_model\.model\.model\.layers\.0\./);
    expect((error as Error).stack).toMatch(/in the worker thread[\s\S]*lora\.ts/);

    const badPrompt = await worker.sample([[5_000]], 1, { maxNewTokens: 2 }).catch((e: Error) => e);
    expect((badPrompt as Error).message).toMatch(/prompt token 5000 is outside the vocabulary \[0, 1006\)/);
    const ok = await worker.sample([prompts[0]], 1, options);
    expect(ok.policyVersion).toBe(4); // the failed setWeights left the last good version
    expect(completionOf(ok, 0)).toHaveLength(6);
  });

  it('cancels a running batch within a token when its signal aborts', async () => {
    const controller = new AbortController();
    const long = worker.sample([[1000, 17]], 1, { maxNewTokens: 100_000, seed: 1, eosTokenIds: [] }, controller.signal);
    setTimeout(() => controller.abort(new Error('Ctrl-C')), 200);
    const error = await long.catch((e: Error) => e);
    expect((error as Error).message).toMatch(/cancelled/);
    // The worker is free again at once.
    const after = await worker.sample([prompts[1]], 1, options);
    expect(completionOf(after, 0).length).toBeGreaterThan(0);
  });
});

describe('worker host lifecycle', () => {
  it('close() rejects in-flight work, stops the thread, and later calls fail clearly', async () => {
    const own = await EngineWorker.start(tfjsRolloutEngine, { model, tokenizer, thread: 'worker', backend: 'cpu' });
    const inFlight = own.sample([[1000, 17]], 1, { maxNewTokens: 100_000, eosTokenIds: [] }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    await own.close();
    expect(((await inFlight) as Error).message).toMatch(/rollout engine tfjs \(worker thread\): closed/);
    await expect(own.sample(prompts, 1, options)).rejects.toThrow(/rollout engine tfjs \(worker thread\): closed/);
    await own.close(); // idempotent
    expect(EngineWorker.liveCount).toBe(1); // only the shared one of this file is left
  });

  it("start() fails with the worker's error when the backend or the model cannot load", async () => {
    const fake = Object.create(model, { dir: { value: '/nonexistent/model-folder' } }) as CausalLM;
    await expect(EngineWorker.start(tfjsRolloutEngine, { model: fake, tokenizer, thread: 'worker', backend: 'cpu' })).rejects.toThrow(
      /rollout engine tfjs \(worker thread\): .*nonexistent\/model-folder/,
    );
    await expect(EngineWorker.start(tfjsRolloutEngine, { model: fake, tokenizer, thread: 'worker', backend: 'no-such-backend' })).rejects.toThrow(/unknown backend "no-such-backend"/);
    expect(EngineWorker.liveCount).toBe(1);
  });

  it('refuses a model that has no folder to load from', async () => {
    const unsaved = Object.create(model, { dir: { value: undefined } }) as CausalLM;
    await expect(EngineWorker.start(tfjsRolloutEngine, { model: unsaved, tokenizer, thread: 'worker' })).rejects.toThrow(/not loaded from a folder.*thread: main/);
  });
});
