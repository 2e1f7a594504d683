// The generator worker: same tokens as in-process generation for the same seed and weights, policy
// snapshots shipped by copy, errors with the worker's stack, and a clean shutdown on abort and close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engines/tfjs/backend.js';
import { tf } from '../../engines/tfjs/tf.js';
import { generate, type GenerationRequest } from '../../engines/tfjs/generate.js';
import { loadLoraSnapshot, loadPeftAdapter, loraSnapshot, type LoraSnapshot } from '../../engines/tfjs/lora.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import type { CausalLM } from '../../engines/tfjs/model.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { GeneratorWorker } from '../../engines/tfjs/worker/generator-worker.js';
import { mainThreadEngine } from '../../engines/tfjs/index.js';
import { referenceLogprobs } from '../../engines/tfjs/grpo/reference-logprobs.js';
import { completionOf } from '../../core/engine/rows.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';

let model: CausalLM;
let tokenizer: Tokenizer;
let worker: GeneratorWorker;

const requests: GenerationRequest[] = [
  { promptIds: [1000, 17, 42, 99], maxNewTokens: 6 },
  { promptIds: [1000, 5, 6], maxNewTokens: 6 },
  { promptIds: [1000, 300, 301, 302, 303], maxNewTokens: 6 },
];
const options = { seed: 11, temperature: 1, topK: 50, maxBatch: 2 };

/** The adapter with every lora_B scaled: a different policy. */
function scaled(snapshot: LoraSnapshot, factor: number): LoraSnapshot {
  return Object.fromEntries(
    Object.entries(snapshot).map(([name, t]) => [name, { shape: t.shape, data: name.includes('lora_B') ? t.data.map((v) => v * factor) : t.data.slice() }]),
  );
}

beforeAll(async () => {
  await initBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  loadPeftAdapter(model, `${LLAMA_TINY}/adapter`); // non-zero lora_B, so the adapter changes the samples
  tokenizer = await Tokenizer.fromDir(LLAMA_TINY);
  worker = await GeneratorWorker.start({ model, tokenizer, backend: 'cpu' });
});

afterAll(async () => {
  await worker?.close();
  model?.dispose();
});

describe('GeneratorWorker', () => {
  it('samples the same tokens and log-probs as in-process generation, for the initial and a shipped policy', async () => {
    const local = await generate(model, requests, { ...options, tokenizer });
    const remote = await worker.generate(requests, options);
    expect(remote.policyVersion).toBe(0);
    expect(remote.results.map((r) => r.ids)).toEqual(local.map((r) => r.ids));
    expect(remote.results.map((r) => r.text)).toEqual(local.map((r) => r.text));
    remote.results.forEach((r, i) => r.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(local[i].logprobs[j], 5)));

    // A new policy: the worker follows it, the caller's arrays stay attached (copied, not transferred).
    const original = loraSnapshot(model);
    const next = scaled(original, 3);
    await worker.setPolicy({ version: 4, weights: next });
    expect(Object.values(next).every((t) => t.data.byteLength > 0)).toBe(true);
    expect(worker.policyVersion).toBe(4);
    loadLoraSnapshot(model, next);
    try {
      const localNext = await generate(model, requests, { ...options, tokenizer });
      const remoteNext = await worker.generate(requests, options);
      expect(remoteNext.policyVersion).toBe(4);
      expect(remoteNext.results.map((r) => r.ids)).toEqual(localNext.map((r) => r.ids));
      expect(remoteNext.results.map((r) => r.ids)).not.toEqual(remote.results.map((r) => r.ids));
    } finally {
      loadLoraSnapshot(model, original);
    }
  });

  it('with `reference`, also returns each completion\'s base-model log-probs, as the main thread computes them', async () => {
    const remote = await worker.generate(requests, { ...options, reference: { temperature: 1 } });
    expect(remote.refLogprobs).toHaveLength(requests.length);
    remote.refLogprobs!.forEach((row, i) => expect(row).toHaveLength(remote.results[i].ids.length));
    const local = await referenceLogprobs(model, requests.map((r) => r.promptIds), remote.results.map((r) => r.ids), { temperature: 1 });
    local.forEach((row, i) => row.forEach((lp, j) => expect(remote.refLogprobs![i][j]).toBeCloseTo(lp, 5)));
    // the base model's, not the adapted policy's that sampled them
    expect(remote.refLogprobs!.flat().some((lp, k) => Math.abs(lp - remote.results.flatMap((r) => r.logprobs)[k]) > 1e-3)).toBe(true);
    expect((await worker.generate(requests, options)).refLogprobs).toBeUndefined();
  });

  it('with `merged`, samples the same tokens from the adapter folded into the weights (worker and main thread), and leaves the weights as they were', async () => {
    await worker.setPolicy({ version: worker.policyVersion, weights: loraSnapshot(model) });
    const plain = await worker.generate(requests, options);
    const merged = await worker.generate(requests, { ...options, merged: true });
    expect(merged.results.map((r) => r.ids)).toEqual(plain.results.map((r) => r.ids));
    merged.results.forEach((r, i) => r.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(plain.results[i].logprobs[j], 4)));
    expect((await worker.generate(requests, options)).results.map((r) => r.logprobs)).toEqual(plain.results.map((r) => r.logprobs));

    const before = model.weights.layers[0].proj.q_proj.weightT;
    const engine = mainThreadEngine(model, tokenizer);
    const products = async (merge: boolean) => {
      let ids: number[][] = [];
      const { kernels } = await tf.profile(async () => {
        const rows = await engine.sample(requests.map((r) => r.promptIds), 1, { ...options, maxNewTokens: 6, merged: merge });
        ids = requests.map((_, i) => Array.from(completionOf(rows, i)));
      });
      expect(ids).toEqual(plain.results.map((r) => r.ids));
      return kernels.filter((k) => k.name === 'BatchMatMul').length;
    };
    expect(await products(true)).toBeLessThan((await products(false)) / 2); // no adapter products per token
    expect(model.weights.layers[0].proj.q_proj.weightT).toBe(before);
    expect(model.lora!.merged).toBe(false);
  });

  it('rejects a bad request with the worker-side message and stack, and keeps serving', async () => {
    const broken = loraSnapshot(model);
    delete broken[Object.keys(broken)[0]];
    const error = await worker.setPolicy({ version: 5, weights: broken }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/generator worker: policy version 5: missing tensor "base_model\.model\.model\.layers\.0\./);
    expect((error as Error).stack).toMatch(/in the generator worker thread[\s\S]*lora\.ts/);
    expect(worker.policyVersion).toBe(4);

    const badPrompt = await worker.generate([{ promptIds: [5_000], maxNewTokens: 2 }]).catch((e: Error) => e);
    expect((badPrompt as Error).message).toMatch(/prompt token 5000 is outside the vocabulary \[0, 1006\)/);
    const ok = await worker.generate([requests[0]], options);
    expect(ok.results[0].ids).toHaveLength(6);
  });

  it('cancels a running batch within a token when its signal aborts', async () => {
    const controller = new AbortController();
    const long = worker.generate([{ promptIds: [1000, 17], maxNewTokens: 100_000 }], { seed: 1, eosTokenIds: [] }, controller.signal);
    setTimeout(() => controller.abort(new Error('Ctrl-C')), 200);
    const error = await long.catch((e: Error) => e);
    expect((error as Error).message).toMatch(/cancelled/);
    // The worker is free again at once.
    const after = await worker.generate([requests[1]], options);
    expect(after.results[0].ids.length).toBeGreaterThan(0);
  });
});

describe('GeneratorWorker lifecycle', () => {
  it('close() rejects in-flight work, stops the thread, and later calls fail clearly', async () => {
    const own = await GeneratorWorker.start({ model, tokenizer, backend: 'cpu' });
    const inFlight = own.generate([{ promptIds: [1000, 17], maxNewTokens: 100_000 }], { eosTokenIds: [] }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    await own.close();
    expect(((await inFlight) as Error).message).toMatch(/generator worker: closed/);
    await expect(own.generate(requests)).rejects.toThrow(/generator worker: closed/);
    await own.close(); // idempotent
    expect(GeneratorWorker.liveCount).toBe(1); // only the shared one of this file is left
  });

  it("start() fails with the worker's error when the backend or the model cannot load", async () => {
    const fake = Object.create(model, { dir: { value: '/nonexistent/model-folder' } }) as CausalLM;
    await expect(GeneratorWorker.start({ model: fake, tokenizer, backend: 'cpu' })).rejects.toThrow(/generator worker: .*nonexistent\/model-folder/);
    await expect(GeneratorWorker.start({ model: fake, tokenizer, backend: 'no-such-backend' })).rejects.toThrow(/unknown backend "no-such-backend"/);
    expect(GeneratorWorker.liveCount).toBe(1);
  });

  it('refuses a model that has no folder to load from', async () => {
    const unsaved = Object.create(model, { dir: { value: undefined } }) as CausalLM;
    await expect(GeneratorWorker.start({ model: unsaved, tokenizer })).rejects.toThrow(/not loaded from a folder.*engine: main/);
  });
});
