import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { Rng } from '../../core/rng.js';
import { generate, repeatForGroups, sampleGroups, type GenerationModel } from '../../engines/tfjs/generate.js';
import type { KVCache } from '../../engines/tfjs/kv-cache.js';
import { logProbOf } from '../../core/llm/sampling.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';

/**
 * A deterministic bigram "model": the next-token logits depend only on the last token. It checks the
 * cache protocol (no slot used twice, released slots only) and records what happened, for assertions.
 */
interface FakeCache {
  occupied: (number | null)[];
  disposed: boolean;
}

class BigramModel implements GenerationModel<FakeCache> {
  readonly config: { vocabSize: number; eosTokenIds: number[] };
  readonly table: Float32Array[];
  readonly events: string[] = [];
  decodeCalls = 0;
  maxConcurrent = 0;
  openCaches = 0;

  constructor(vocabSize: number, seed: number, eosTokenIds: number[] = []) {
    this.config = { vocabSize, eosTokenIds };
    const rng = new Rng(seed);
    this.table = Array.from({ length: vocabSize }, () => Float32Array.from({ length: vocabSize }, () => rng.normal() * 2));
  }
  newCache(slots: number): FakeCache {
    this.openCaches++;
    return { occupied: new Array<number | null>(slots).fill(null), disposed: false };
  }
  private row(ids: number[]) {
    return this.table[ids[ids.length - 1]];
  }
  prefill(cache: FakeCache, slot: number, ids: number[]): tf.Tensor1D {
    if (cache.occupied[slot] !== null) throw new Error(`slot ${slot} prefilled while occupied`);
    cache.occupied[slot] = ids[ids.length - 1];
    this.events.push(`prefill ${slot}`);
    this.maxConcurrent = Math.max(this.maxConcurrent, cache.occupied.filter((s) => s !== null).length);
    return tf.tensor1d(this.row(ids));
  }
  decode(cache: FakeCache, slots: number[], tokens: number[]): tf.Tensor2D {
    this.decodeCalls++;
    slots.forEach((s) => {
      if (cache.occupied[s] === null) throw new Error(`decode on free slot ${s}`);
    });
    const rows = tokens.map((t) => [...this.table[t]]);
    return tf.tensor2d(rows, [tokens.length, this.config.vocabSize]);
  }
  release(cache: FakeCache, slot: number): void {
    if (cache.occupied[slot] === null) throw new Error(`release of free slot ${slot}`);
    cache.occupied[slot] = null;
    this.events.push(`release ${slot}`);
  }
  disposeCache(cache: FakeCache): void {
    cache.disposed = true;
    this.openCaches--;
  }
  /** Greedy continuation computed directly from the table. */
  greedy(prompt: number[], n: number): { ids: number[]; logprobs: number[] } {
    const ids: number[] = [];
    const logprobs: number[] = [];
    let last = prompt[prompt.length - 1];
    for (let i = 0; i < n; i++) {
      const row = this.table[last];
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
      ids.push(best);
      logprobs.push(logProbOf(row, best));
      last = best;
    }
    return { ids, logprobs };
  }
}

describe('generate with a bigram model', () => {
  it('greedy decoding follows argmax and reports raw log-probs', async () => {
    const model = new BigramModel(50, 1);
    const [result] = await generate(model, [{ promptIds: [3, 4], maxNewTokens: 6 }], { temperature: 0 });
    const expected = model.greedy([3, 4], 6);
    expect(result.ids).toEqual(expected.ids);
    // The normaliser is a float32 logsumexp computed on the device.
    result.logprobs.forEach((lp, i) => expect(Math.abs(lp - expected.logprobs[i])).toBeLessThan(1e-5));
    expect(result.finishReason).toBe('length');
    expect(model.openCaches).toBe(0);
  });

  it('gives the same samples whatever the batch size (one RNG per request)', async () => {
    const model = new BigramModel(40, 2);
    const requests = Array.from({ length: 7 }, (_, i) => ({ promptIds: [i, i + 1], maxNewTokens: 3 + ((i * 5) % 9) }));
    const run = (maxBatch: number) => generate(model, requests, { maxBatch, temperature: 1, topP: 0.9, seed: 11 });
    const one = await run(1);
    expect(await run(3)).toEqual(one);
    expect(await run(16)).toEqual(one);
    const otherSeed = await generate(model, requests, { maxBatch: 3, temperature: 1, topP: 0.9, seed: 12 });
    expect(otherSeed.map((r) => r.ids)).not.toEqual(one.map((r) => r.ids));
  });

  it('records log-probs at logprobTemperature (the sampling distribution the trainer recomputes)', async () => {
    const model = new BigramModel(12, 5);
    const [raw] = await generate(model, [{ promptIds: [3], maxNewTokens: 6 }], { temperature: 2, seed: 9 });
    const [scaled] = await generate(model, [{ promptIds: [3], maxNewTokens: 6 }], { temperature: 2, seed: 9, logprobTemperature: 2 });
    expect(scaled.ids).toEqual(raw.ids); // the same samples; only what is recorded differs
    let previous = 3;
    scaled.ids.forEach((id, i) => {
      const halved = model.table[previous].map((v) => v / 2);
      expect(scaled.logprobs[i]).toBeCloseTo(logProbOf(halved, id), 5);
      expect(raw.logprobs[i]).toBeCloseTo(logProbOf(model.table[previous], id), 5);
      previous = id;
    });
    await expect(generate(model, [{ promptIds: [3], maxNewTokens: 1 }], { logprobTemperature: 0 })).rejects.toThrow(/logprobTemperature/);
  });

  it("logprobMode 'sampled' records the log-prob under the truncated distribution each token was drawn from", async () => {
    const model = new BigramModel(12, 5);
    const options = { temperature: 2, topK: 2, seed: 9 };
    const [tempered] = await generate(model, [{ promptIds: [3], maxNewTokens: 6 }], { ...options, logprobTemperature: 2 });
    const [sampled] = await generate(model, [{ promptIds: [3], maxNewTokens: 6 }], { ...options, logprobMode: 'sampled' });
    expect(sampled.ids).toEqual(tempered.ids);
    let previous = 3;
    sampled.ids.forEach((id, i) => {
      // The two largest logits of the row, at T = 2, renormalised between themselves.
      const row = model.table[previous];
      const [a, b] = [...row.keys()].sort((x, y) => row[y] - row[x]).slice(0, 2);
      expect([a, b]).toContain(id);
      const other = id === a ? b : a;
      expect(sampled.logprobs[i]).toBeCloseTo(-Math.log1p(Math.exp((row[other] - row[id]) / 2)), 5);
      expect(sampled.logprobs[i]).toBeGreaterThan(tempered.logprobs[i]); // the truncated distribution puts more mass on it
      previous = id;
    });
  });

  it('continuous batching: a finished sequence frees its slot for the next prompt, so a long one does not stall', async () => {
    const model = new BigramModel(30, 3);
    const lengths = [24, 2, 3, 2, 4, 2, 3];
    const finished: number[] = [];
    const results = await generate(
      model,
      lengths.map((n, i) => ({ promptIds: [i], maxNewTokens: n })),
      { maxBatch: 2, temperature: 0, onFinish: (i) => finished.push(i) },
    );
    results.forEach((r, i) => expect(r.ids.length).toBe(lengths[i]));
    expect(finished[finished.length - 1]).toBe(0); // the long one ends last
    expect(finished.slice(0, -1)).toEqual([1, 2, 3, 4, 5, 6]);
    // The long sequence's 23 decode steps carry all the short ones alongside: no extra steps.
    expect(model.decodeCalls).toBe(lengths[0] - 1);
    expect(model.maxConcurrent).toBe(2);
    expect(model.events.filter((e) => e.startsWith('prefill')).length).toBe(lengths.length);
  });

  it('stops on an eos id and keeps it in the ids', async () => {
    const model = new BigramModel(50, 4);
    const chain = model.greedy([7], 8).ids;
    const eos = chain[3];
    const stopAt = chain.indexOf(eos);
    const [result] = await generate(model, [{ promptIds: [7], maxNewTokens: 8 }], { temperature: 0, eosTokenIds: [eos] });
    expect(result.finishReason).toBe('eos');
    expect(result.ids).toEqual(chain.slice(0, stopAt + 1));
    // The model config's eos ids are the default.
    const withConfigEos = new BigramModel(50, 4, [eos]);
    const [again] = await generate(withConfigEos, [{ promptIds: [7], maxNewTokens: 8 }], { temperature: 0 });
    expect(again.ids).toEqual(result.ids);
  });

  it('maxNewTokens 0 gives an empty completion without touching the model', async () => {
    const model = new BigramModel(10, 5);
    const [result] = await generate(model, [{ promptIds: [1], maxNewTokens: 0 }]);
    expect(result).toMatchObject({ ids: [], logprobs: [], finishReason: 'length' });
    expect(model.events).toEqual([]);
  });

  it('rejects bad requests with the request index', async () => {
    const model = new BigramModel(10, 5);
    await expect(generate(model, [{ promptIds: [1], maxNewTokens: 1 }, { promptIds: [], maxNewTokens: 1 }])).rejects.toThrow(/request 1: promptIds must be a non-empty list/);
    await expect(generate(model, [{ promptIds: [10], maxNewTokens: 1 }])).rejects.toThrow(/request 0: prompt token 10 is outside the vocabulary \[0, 10\)/);
    await expect(generate(model, [{ promptIds: [1], maxNewTokens: 2, stop: ['x'] }])).rejects.toThrow(/stop strings need a tokenizer/);
    await expect(generate(model, [{ promptIds: [1], maxNewTokens: 2 }], { maxBatch: 0 })).rejects.toThrow(/maxBatch/);
  });

  it('an aborted signal stops generation and still frees the cache', async () => {
    const model = new BigramModel(20, 6);
    const controller = new AbortController();
    let tokens = 0;
    const promise = generate(model, [{ promptIds: [1], maxNewTokens: 100 }], {
      onToken: () => {
        if (++tokens === 5) controller.abort();
      },
      signal: controller.signal,
    });
    await expect(promise).rejects.toThrow(/generation aborted/);
    expect(tokens).toBe(5);
    expect(model.openCaches).toBe(0);
  });

  it('sampleGroups returns G completions per prompt', async () => {
    expect(repeatForGroups(['a', 'b'], 3)).toEqual(['a', 'a', 'a', 'b', 'b', 'b']);
    const model = new BigramModel(30, 7);
    const groups = await sampleGroups(model, [{ promptIds: [1], maxNewTokens: 4 }, { promptIds: [2], maxNewTokens: 5 }], 3, { seed: 1, maxBatch: 4 });
    expect(groups.map((g) => g.map((c) => c.ids.length))).toEqual([[4, 4, 4], [5, 5, 5]]);
    expect(new Set(groups[0].map((c) => c.ids.join())).size).toBeGreaterThan(1);
  });

  it('does not leak tensors across 50 generate calls', async () => {
    const model = new BigramModel(30, 8);
    const requests = [{ promptIds: [1, 2], maxNewTokens: 5 }, { promptIds: [3], maxNewTokens: 3 }];
    await generate(model, requests, { maxBatch: 2 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await generate(model, requests, { maxBatch: 2, seed: i });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('generate with stop strings', async () => {
  const tokenizer = await Tokenizer.fromDir('test/fixtures/llama-tiny');
  const model = new BigramModel(tokenizer.vocabSize, 9);

  it('stops on the token that completes a stop string and cuts the text before it', async () => {
    // Start from a token whose greedy chain has no special tokens in its first 12 steps.
    const start = [...Array(900).keys()].find((t) => model.greedy([t], 12).ids.every((id) => !tokenizer.isSpecial(id)))!;
    const chain = model.greedy([start], 12).ids;
    const fullText = tokenizer.decode(chain);
    // A stop string spanning the 4th and 5th tokens' text.
    const prefix = tokenizer.decode(chain.slice(0, 3)).length;
    const stop = fullText.slice(prefix + 1, tokenizer.decode(chain.slice(0, 5)).length);
    expect(stop.length).toBeGreaterThan(0);
    const firstAt = fullText.indexOf(stop);
    const [result] = await generate(model, [{ promptIds: [start], maxNewTokens: 12, stop: [stop] }], { temperature: 0, tokenizer });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(fullText.slice(0, firstAt));
    const completing = chain.findIndex((_, i) => tokenizer.decode(chain.slice(0, i + 1)).includes(stop));
    expect(result.ids).toEqual(chain.slice(0, completing + 1));
    expect(result.logprobs.length).toBe(result.ids.length);
  });

  it('fills text (without special tokens) when a tokenizer is given', async () => {
    const [result] = await generate(model, [{ promptIds: [5], maxNewTokens: 6 }], { temperature: 0, tokenizer });
    expect(result.text).toBe(tokenizer.decode(result.ids, { skipSpecialTokens: true }));
  });
});

describe('generate with llama-tiny', async () => {
  type Chat = { ids: number[]; greedy: number[]; sequence_logprobs: number[] };
  const reference = JSON.parse(readFileSync('test/fixtures/llama-tiny/reference.json', 'utf8')) as Record<'chats' | 'adapter' | 'merged', Chat[]>;
  const { loadModel } = await import('../../engines/tfjs/model-loader.js');
  const { loadPeftAdapter, mergeLora } = await import('../../engines/tfjs/lora.js');
  const model = await loadModel('test/fixtures/llama-tiny');

  /** Greedy generation of every conversation at once (2 slots for 3 prompts: one waits for a free slot). */
  async function expectReference(chats: Chat[]) {
    const results = await generate(
      model,
      chats.map((c) => ({ promptIds: c.ids, maxNewTokens: 12 })),
      { temperature: 0, maxBatch: 2 },
    );
    chats.forEach((chat, i) => {
      expect(results[i].ids).toEqual(chat.greedy);
      const tail = chat.sequence_logprobs.slice(chat.ids.length - 1);
      expect(results[i].logprobs.length).toBe(tail.length);
      results[i].logprobs.forEach((lp, j) => expect(Math.abs(lp - tail[j])).toBeLessThan(1e-4));
    });
  }

  it('batched greedy generation reproduces transformers for every conversation', async () => {
    await expectReference(reference.chats);
  });

  it('repeated prompts are prefilled once and copied: the same samples and log-probs as prefilling each', async () => {
    const requests = repeatForGroups(reference.chats.map((c) => ({ promptIds: c.ids, maxNewTokens: 6 })), 3);
    const options = { temperature: 1, seed: 5, maxBatch: 9 };
    const copySlots = vi.spyOn(model, 'copySlots');
    const shared = await generate(model, requests, options);
    expect(copySlots).toHaveBeenCalledTimes(1);
    expect(copySlots.mock.calls[0][1]).toHaveLength(6); // 9 sequences, 3 prompts
    copySlots.mockRestore();
    // the same model without copySlots: every sequence prefilled on its own
    const plain: GenerationModel = {
      config: model.config,
      newCache: (slots, maxLength) => model.newCache(slots, maxLength),
      prefill: (cache, slot, ids) => model.prefill(cache as KVCache, slot, ids),
      prefillMany: (cache, slots, prompts) => model.prefillMany(cache as KVCache, slots, prompts),
      decode: (cache, slots, tokens) => model.decode(cache as KVCache, slots, tokens),
      release: (cache, slot) => model.release(cache as KVCache, slot),
      disposeCache: (cache) => model.disposeCache(cache as KVCache),
    };
    const separate = await generate(plain, requests, options);
    expect(shared.map((r) => r.ids)).toEqual(separate.map((r) => r.ids));
    shared.forEach((r, i) => r.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(separate[i].logprobs[j], 5)));
  });

  it('does not leak tensors (KV cache included) across 50 generate calls', async () => {
    const requests = [{ promptIds: reference.chats[1].ids.slice(0, 12), maxNewTokens: 3 }, { promptIds: [1000, 5, 6], maxNewTokens: 2 }];
    await generate(model, requests, { maxBatch: 2 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await generate(model, requests, { maxBatch: 2, seed: i, topK: 20 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('and with the PEFT adapter, then with it merged into the weights', async () => {
    await loadPeftAdapter(model, 'test/fixtures/llama-tiny/adapter');
    await expectReference(reference.adapter);
    mergeLora(model);
    await expectReference(reference.merged);
  });
});
