// The WebGPU rollout engine against transformers (llama-tiny fixture, precision f32 on lavapipe): greedy
// tokens equal, scored log-probs within 1e-4, base and adapter; the same greedy tokens as the tfjs
// engine; seeds reproducible; continuous batching equal to one sequence at a time.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../core/engine/rows.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { initBackend } from '../tfjs/backend.js';
import { loadPeftAdapter } from '../tfjs/lora.js';
import { loadModel } from '../tfjs/model-loader.js';
import type { CausalLM } from '../tfjs/model.js';
import { TfjsRolloutEngine } from '../tfjs/rollout-engine.js';
import { setupFromCausalLM } from './index.js';
import { WebGpuRolloutEngine } from './rollout-engine.js';
import { NO_ADAPTER, testGpu } from './testing.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
interface Chat {
  ids: number[];
  greedy: number[];
  sequence_logprobs: number[];
}
const reference = JSON.parse(readFileSync(`${LLAMA_TINY}/reference.json`, 'utf8')) as Record<'chats' | 'adapter', Chat[]>;

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

// lavapipe compiles each new pipeline for seconds on a loaded machine: generous timeouts.
describe.skipIf(!gpu)('webgpu rollout engine (llama-tiny, f32)', { timeout: 300_000 }, () => {
  let model: CausalLM;
  let tokenizer: Tokenizer;
  let base: WebGpuRolloutEngine;
  let adapted: WebGpuRolloutEngine;
  // Small chunks and prefill launches, so prompts span several prefill launches and sequences several read-backs.
  const limits = { chunk: 5, prefillRows: 32 };

  beforeAll(async () => {
    await initBackend('cpu');
    model = await loadModel(LLAMA_TINY);
    tokenizer = await Tokenizer.fromDir(LLAMA_TINY);
    base = await WebGpuRolloutEngine.create(gpu!, { ...(await setupFromCausalLM(model, tokenizer, 'f32')), ...limits });
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    adapted = await WebGpuRolloutEngine.create(gpu!, { ...(await setupFromCausalLM(model, tokenizer, 'f32')), ...limits });
  });
  afterAll(async () => {
    await base?.close();
    await adapted?.close();
  });

  for (const [which, chats] of [['base', 'chats'], ['adapter', 'adapter']] as const) {
    it(`greedy tokens equal transformers' (${which}); 2 slots for 3 prompts`, async () => {
      const engine = which === 'base' ? base : adapted;
      const set = reference[chats];
      const out = await engine.sample(set.map((c) => c.ids), 1, { maxNewTokens: 12, temperature: 0, maxBatch: 2, eosTokenIds: [] });
      set.forEach((chat, i) => {
        const ids = Array.from(out.completionIds.subarray(out.completionOffsets[i], out.completionOffsets[i + 1]));
        expect(ids).toEqual(chat.greedy);
        const tail = chat.sequence_logprobs.slice(chat.ids.length - 1);
        const lps = out.logprobs.subarray(out.completionOffsets[i], out.completionOffsets[i + 1]);
        lps.forEach((lp, j) => expect(Math.abs(lp - tail[j])).toBeLessThan(1e-4));
      });
    });

    it(`scored log-probs within 1e-4 of transformers' (${which})`, async () => {
      const engine = which === 'base' ? base : adapted;
      const set = reference[chats];
      // The whole sequence after its first token as the "completion": every position is checked.
      const rows = rowsOf(
        set.map((c) => c.ids.slice(0, 1)),
        set.map((c) => [...c.ids.slice(1), ...c.greedy]),
      );
      const lp = await engine.score(rows, { adapters: 'on', temperature: 1 });
      let worst = 0;
      set.forEach((chat, i) => {
        const got = lp.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
        expect(got.length).toBe(chat.sequence_logprobs.length);
        got.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - chat.sequence_logprobs[j]))));
      });
      expect(worst).toBeLessThan(1e-4);
    });
  }

  it('f16 weights (packed on the GPU): the fixture is stored in bfloat16, which f16 holds exactly in its range, so scores stay within 1e-4', async () => {
    const half = await WebGpuRolloutEngine.create(gpu!, { ...(await setupFromCausalLM(model, tokenizer, 'f16')), ...limits });
    const set = reference.adapter;
    const rows = rowsOf(
      set.map((c) => c.ids.slice(0, 1)),
      set.map((c) => [...c.ids.slice(1), ...c.greedy]),
    );
    const lp = await half.score(rows, { adapters: 'on', temperature: 1 });
    set.forEach((chat, i) => {
      const got = lp.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
      got.forEach((v, j) => expect(Math.abs(v - chat.sequence_logprobs[j])).toBeLessThan(1e-4));
    });
    await half.close();
    half.weights.destroy();
  });

  it('adapters off scores the base model', async () => {
    const set = reference.chats;
    const rows = rowsOf(
      set.map((c) => c.ids.slice(0, 1)),
      set.map((c) => [...c.ids.slice(1), ...c.greedy]),
    );
    const lp = await adapted.score(rows, { adapters: 'off', temperature: 1 });
    set.forEach((chat, i) => {
      const got = lp.subarray(rows.completionOffsets[i], rows.completionOffsets[i + 1]);
      got.forEach((v, j) => expect(Math.abs(v - chat.sequence_logprobs[j])).toBeLessThan(1e-4));
    });
  });

  it('greedy tokens equal the tfjs engine\'s (adapter, G = 3 sharing a prefill)', async () => {
    const prompts = reference.adapter.map((c) => c.ids.slice(-20));
    const options = { maxNewTokens: 10, temperature: 0, maxBatch: 4, eosTokenIds: [] as number[] };
    const tfjs = TfjsRolloutEngine.fork(model, tokenizer);
    const want = await tfjs.sample(prompts, 3, options);
    await tfjs.close();
    const got = await adapted.sample(prompts, 3, options);
    expect(Array.from(got.completionIds)).toEqual(Array.from(want.completionIds));
    got.logprobs.forEach((lp, i) => expect(Math.abs(lp - want.logprobs[i])).toBeLessThan(1e-4));
  });

  it('sampling: the same seed gives the same tokens; continuous batching equals one sequence at a time', async () => {
    // 2 prompts × 4: 3 slots, so completions start as others finish; 1 slot: one at a time.
    const prompts = reference.chats.slice(0, 2).map((c) => c.ids.slice(-12));
    const options = { maxNewTokens: 6, temperature: 0.9, topK: 50, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1, seed: 7, eosTokenIds: [] as number[] };
    const together = await adapted.sample(prompts, 4, { ...options, maxBatch: 3 });
    const again = await adapted.sample(prompts, 4, { ...options, maxBatch: 3 });
    const alone = await adapted.sample(prompts, 4, { ...options, maxBatch: 1 });
    expect(Array.from(again.completionIds)).toEqual(Array.from(together.completionIds));
    expect(Array.from(alone.completionIds)).toEqual(Array.from(together.completionIds));
    alone.logprobs.forEach((lp, i) => expect(Math.abs(lp - together.logprobs[i])).toBeLessThan(1e-5));
    const other = await adapted.sample(prompts, 4, { ...options, seed: 8, maxBatch: 3 });
    expect(Array.from(other.completionIds)).not.toEqual(Array.from(together.completionIds));
    // Completions of one prompt differ from each other (their seeds differ).
    const first = (i: number) => Array.from(together.completionIds.subarray(together.completionOffsets[i], together.completionOffsets[i + 1]));
    expect(new Set([0, 1, 2, 3].map((i) => first(i).join(','))).size).toBeGreaterThan(1);
  }, 600_000);

  it('eos ends a sequence and stop strings cut it on the host', async () => {
    const prompt = reference.chats[0].ids;
    const greedy = reference.chats[0].greedy;
    const eosAt = await base.sample([prompt], 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [greedy[3]] });
    expect(Array.from(eosAt.completionIds)).toEqual(greedy.slice(0, 4));
    expect(eosAt.finishReasons).toEqual(['eos']);
    const stopText = tokenizer.decode(greedy.slice(6, 7));
    const stopped = await base.sample([prompt], 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [], stop: [stopText] });
    expect(stopped.finishReasons).toEqual(['stop']);
    expect(Array.from(stopped.completionIds)).toEqual(greedy.slice(0, stopped.completionIds.length));
    expect(stopped.texts[0]).not.toContain(stopText);
  });

  it('setWeights moves the adapter without reloading the base: zero adapter weights give the base model', async () => {
    const { loraSnapshot } = await import('../tfjs/lora.js');
    const snapshot = loraSnapshot(model);
    const zero = Object.fromEntries(Object.entries(snapshot).map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }]));
    await adapted.setWeights({ version: 3, weights: zero });
    const out = await adapted.sample([reference.chats[1].ids], 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
    expect(Array.from(out.completionIds)).toEqual(reference.chats[1].greedy);
    expect(out.policyVersion).toBe(3);
    await adapted.setWeights({ version: 4, weights: snapshot });
    const back = await adapted.sample([reference.adapter[1].ids], 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
    expect(Array.from(back.completionIds)).toEqual(reference.adapter[1].greedy);
  });
});
