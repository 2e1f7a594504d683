import { BehaviorSubject, from, lastValueFrom, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../engines/tfjs/backend.js';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { loadLoraSnapshot, loadPeftAdapter, detachLora, loraSnapshot } from '../engines/tfjs/lora.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import type { Services } from '../core/plugin.js';
import type { RolloutEngine, RolloutEngineDefinition } from '../core/engine/interfaces.js';
import { rowsOf } from '../core/engine/rows.js';
import type { PolicySnapshot, PromptRecord, RolloutBatch } from '../core/ports.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { rolloutEngineName, rolloutGenerate } from './rollout-generate.js';

const FIXTURE = 'test/fixtures/llama-tiny';
interface ReferenceChat {
  messages: { role: string; content: string }[];
  rendered: string;
  ids: number[];
  greedy: number[];
  sequence_logprobs: number[];
}
const reference = (await import('../test/fixtures/llama-tiny/reference.json', { with: { type: 'json' } })).default as {
  chats: ReferenceChat[];
  adapter: ReferenceChat[];
};
await initBackend('wasm');
const model = await loadModel(FIXTURE);
const tokenizer = await Tokenizer.fromDir(FIXTURE);
const template = (await ChatTemplate.fromDir(FIXTURE)).withVariables({ date_string: '26 Jul 2024' });
afterAll(() => model.dispose());

const records: PromptRecord[] = reference.chats.map((c, i) => ({ id: `chat-${i}`, messages: c.messages, fields: { answer: String(i) } }));

async function rollouts(config: Record<string, unknown>, prompts: PromptRecord[] = records, policy?: BehaviorSubject<PolicySnapshot>, services: Services = {}) {
  const recorded = recordingContext(rolloutGenerate.config.parse(config), { id: 'gen', services: { seed: 11, ...services } });
  const out = await rolloutGenerate.run(recorded.ctx, { model, tokenizer, template, prompts: from(prompts), policy });
  const batches = await lastValueFrom(out.rollouts!.pipe(toArray()));
  await recorded.runTeardown();
  return { batches, events: recorded.events, metrics: recorded.metrics };
}

/** The reference log-probs of the greedy tokens: sequence_logprobs[i] scores token i + 1 of ids + greedy. */
const greedyLogprobs = (chat: ReferenceChat) => chat.greedy.map((_, j) => chat.sequence_logprobs[chat.ids.length - 1 + j]);
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** An engine that samples completion [5, 6 + i] for row i (log-prob −0.5, text 'ok'), stamps version 7, and logs its calls. */
function fixedEngine(name: string, calls: string[]): RolloutEngine {
  return {
    name,
    async setWeights(policy) {
      calls.push(`setWeights ${policy.version}`);
    },
    async sample(prompts, n) {
      calls.push(`sample ${prompts.length}x${n}`);
      const count = prompts.length * n;
      const rows = rowsOf(
        Array.from({ length: count }, (_, i) => prompts[Math.floor(i / n)]),
        Array.from({ length: count }, (_, i) => [5, 6 + i]),
        Array.from({ length: count }, (_, i) => Math.floor(i / n)),
      );
      return { ...rows, logprobs: new Float32Array(rows.completionIds.length).fill(-0.5), finishReasons: Array(count).fill('eos'), texts: Array(count).fill('ok'), policyVersion: 7, seconds: 0.1 };
    },
    score: () => Promise.reject(new Error('not used')),
    close: async () => void calls.push('close'),
  };
}

describe('rollout.generate', () => {
  it('renders, tokenizes and samples as transformers does: greedy completions equal the reference', async () => {
    const { batches } = await rollouts({ num_generations: 2, prompts_per_batch: 2, max_new_tokens: 12, temperature: 0, drop_last: false });
    expect(batches.map((b) => [b.index, b.policyVersion, b.groups.length])).toEqual([[0, 0, 2], [1, 0, 1]]);
    batches.flatMap((b) => b.groups).forEach((group, i) => {
      const chat = reference.chats[i];
      expect(group.prompt.id).toBe(`chat-${i}`);
      expect(group.promptText).toBe(chat.rendered);
      expect(group.promptIds).toEqual(chat.ids);
      expect(group.completions).toHaveLength(2);
      for (const c of group.completions) {
        expect(c.ids).toEqual(chat.greedy);
        expect(c.finishReason).toBe('length');
        expect(c.text).toBe(tokenizer.decode(chat.greedy, { skipSpecialTokens: true }));
        // Greedy draws from no distribution: its log-probs are the model's, equal to transformers'.
        expect(maxDiff(c.logprobs, greedyLogprobs(chat))).toBeLessThan(1e-4);
      }
    });
  });

  it("samples from the LoRA-adapted model when an adapter is attached (peft's greedy tokens)", async () => {
    loadPeftAdapter(model, `${FIXTURE}/adapter`);
    try {
      const { batches } = await rollouts({ num_generations: 1, prompts_per_batch: 3, max_new_tokens: 12, temperature: 0 });
      batches[0].groups.forEach((g, i) => expect(g.completions[0].ids).toEqual(reference.adapter[i].greedy));
    } finally {
      detachLora(model);
    }
  });

  it('samples G seeded completions per prompt, stamps the policy version, publishes metrics and a sampled completion', async () => {
    const policy = new BehaviorSubject<PolicySnapshot>({ version: 4, weights: {} });
    const config = { num_generations: 3, prompts_per_batch: 2, max_new_tokens: 6, top_k: 50 };
    const first = await rollouts(config, records.slice(0, 2), policy);
    const [batch] = first.batches;
    expect(batch.policyVersion).toBe(4);
    const completions = batch.groups.flatMap((g) => g.completions);
    expect(completions).toHaveLength(6);
    for (const c of completions) {
      expect(c.ids.length).toBeGreaterThan(0);
      expect(c.ids.length).toBeLessThanOrEqual(6);
      expect(c.logprobs).toHaveLength(c.ids.length);
      expect(c.logprobs.every((l) => l <= 0 && Number.isFinite(l))).toBe(true);
      expect(c.finishReason).toBe(c.ids.length === 6 && ![1001, 1004].includes(c.ids[5]) ? 'length' : 'eos');
    }
    expect(new Set(completions.map((c) => c.ids.join())).size).toBeGreaterThan(1);
    // The same seed gives the same samples; another seed other ones.
    expect((await rollouts(config, records.slice(0, 2), policy)).batches).toEqual(first.batches);
    expect((await rollouts({ ...config, seed: 99 }, records.slice(0, 2))).batches[0].groups[0].completions).not.toEqual(batch.groups[0].completions);

    const tokens = completions.reduce((s, c) => s + c.ids.length, 0);
    expect(first.metrics).toHaveLength(1);
    expect(first.metrics[0]).toMatchObject({ step: 0, values: { 'rollout/tokens': tokens } });
    expect(first.metrics[0].values['rollout/tokens_per_s']).toBeGreaterThan(0);
    expect(first.metrics[0].values['rollout/batch_time']).toBeGreaterThan(0);
    expect(first.metrics[0].values.busy).toBeGreaterThan(0);
    expect(first.metrics[0].values.busy).toBeLessThanOrEqual(1);
    const sample = first.events.find((e) => e.data?.completion !== undefined)!;
    expect(sample.data).toEqual({ step: 0, prompt: records[0].messages[1].content, completion: batch.groups[0].completions[0].text });
  });

  it('drops an incomplete last batch, as TRL does, unless told to keep it', async () => {
    const { batches, events } = await rollouts({ num_generations: 1, prompts_per_batch: 2, max_new_tokens: 1 });
    expect(batches.map((b) => b.groups.map((g) => g.prompt.id))).toEqual([['chat-0', 'chat-1']]);
    expect(events.map((e) => e.message)).toContain('dropped the last 1 prompt(s): fewer than prompts_per_batch 2');
  });

  it('resumes where the trainer stood: skips the prompts trained on, continues the batch numbers and seeds', async () => {
    const config = { num_generations: 2, prompts_per_batch: 1, max_new_tokens: 4 };
    const uninterrupted = await rollouts(config);
    expect(uninterrupted.batches.map((b) => b.index)).toEqual([0, 1, 2]);
    const resume = { checkpoint: { dir: '/tmp/checkpoint-5', step: 5, datasetPosition: { prompts: 2, batches: 2 } } };
    const resumed = await rollouts(config, records, undefined, { resume });
    expect(resumed.batches).toEqual([{ ...uninterrupted.batches[2], policyVersion: 5 }]);
  });

  it('cuts a completion at a stop string', async () => {
    const text = tokenizer.decode(reference.chats[1].greedy, { skipSpecialTokens: true });
    const stop = text.slice(6, 9);
    const { batches } = await rollouts({ num_generations: 1, max_new_tokens: 12, temperature: 0, stop: [stop] }, records.slice(1, 2));
    const c = batches[0].groups[0].completions[0];
    expect(c.finishReason).toBe('stop');
    expect(c.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(c.ids).toEqual(reference.chats[1].greedy.slice(0, c.ids.length));
    expect(c.ids.length).toBeLessThan(12);
  });

  it('left-truncates long prompts as TRL does, or skips them, with a warning', async () => {
    const truncated = await rollouts({ num_generations: 1, prompts_per_batch: 3, max_new_tokens: 1, max_prompt_length: 100 });
    const groups = truncated.batches[0].groups;
    expect(groups.map((g) => g.promptIds)).toEqual([reference.chats[0].ids.slice(-100), reference.chats[1].ids, reference.chats[2].ids.slice(-100)]);
    expect(groups[0].promptText).toBe(tokenizer.decode(reference.chats[0].ids.slice(-100)));
    expect(truncated.events.filter((e) => e.level === 'warn').map((e) => e.message)).toEqual([
      `prompt "chat-0" has ${reference.chats[0].ids.length} tokens, over max_prompt_length 100: kept its last 100`,
      `prompt "chat-2" has ${reference.chats[2].ids.length} tokens, over max_prompt_length 100: kept its last 100`,
    ]);
    // Skipped prompts leave before batching, so batches stay whole.
    const skipped = await rollouts({ num_generations: 1, prompts_per_batch: 1, max_new_tokens: 1, max_prompt_length: 100, long_prompts: 'skip' });
    expect(skipped.batches.map((b: RolloutBatch) => [b.index, b.groups.map((g) => g.prompt.id)])).toEqual([[0, ['chat-1']]]);
    expect(skipped.events.filter((e) => e.level === 'warn')).toHaveLength(2);
  });

  it("refuses a prompt that, with max_new_tokens, does not fit the model's positions, saying what to set", async () => {
    const tokens = reference.chats[0].ids.length;
    await expect(rollouts({ num_generations: 1, prompts_per_batch: 1, max_new_tokens: 512 - tokens + 1 }, records.slice(0, 1))).rejects.toThrow(
      `prompt "chat-0" does not fit the model: ${tokens} prompt tokens + ${513 - tokens} new tokens = 513, over the model's max_position_embeddings 512; ` +
        `set max_prompt_length (at most ${tokens - 1}) with long_prompts: truncate or skip, or lower max_new_tokens`,
    );
  });

  it("samples with its own copy of the adapter weights: changes to the model's reach it only through a policy snapshot", async () => {
    loadPeftAdapter(model, `${FIXTURE}/adapter`);
    const config = { num_generations: 2, max_new_tokens: 4, seed: 3 };
    const first = await rollouts(config, records.slice(1, 2));
    const original = loraSnapshot(model);
    const scaled = Object.fromEntries(Object.entries(original).map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v) => (name.includes('lora_B') ? v * 4 : v)) }]));
    let changed: Awaited<ReturnType<typeof rollouts>> | undefined;
    try {
      const pending = rollouts(config, records.slice(1, 2));
      loadLoraSnapshot(model, scaled); // the trainer's model changes after the generator started
      expect((await pending).batches).toEqual(first.batches);
      changed = await rollouts(config, records.slice(1, 2), new BehaviorSubject<PolicySnapshot>({ version: 0, weights: scaled }));
    } finally {
      detachLora(model);
    }
    expect(changed.batches[0].groups[0].completions.map((c) => c.logprobs)).not.toEqual(first.batches[0].groups[0].completions.map((c) => c.logprobs));
  });

  it('overlap: samples in a worker thread exactly what the main thread samples, and reports the generator busy', async () => {
    const config = { num_generations: 2, prompts_per_batch: 2, max_new_tokens: 6, top_k: 50, drop_last: false };
    const services = { backend: { name: 'wasm', notes: [] } }; // the worker takes the run's backend
    const inProcess = await rollouts(config, records, undefined, services);
    const inWorker = await rollouts({ ...config, overlap: true }, records, undefined, services);
    expect(inWorker.events.some((e) => /sampling in a worker thread \(wasm\)/.test(e.message))).toBe(true);
    expect(inWorker.batches.map((b) => b.groups.map((g) => g.completions.map((c) => c.ids)))).toEqual(
      inProcess.batches.map((b) => b.groups.map((g) => g.completions.map((c) => c.ids))),
    );
    const logprobs = (r: typeof inProcess) => r.batches.flatMap((b) => b.groups.flatMap((g) => g.completions.flatMap((c) => c.logprobs)));
    expect(maxDiff(logprobs(inWorker), logprobs(inProcess))).toBeLessThan(1e-5);
    const last = inWorker.metrics.at(-1)!.values;
    expect(last['scheduler/generator_busy']).toBeGreaterThan(0);
    expect(last.busy).toBe(last['scheduler/generator_busy']);
  });

  it('samples through the rollout engine the graph names (a plugin\'s), handing it each policy\'s weights', async () => {
    const calls: string[] = [];
    const fake = fixedEngine('fixed', calls);
    const definition: RolloutEngineDefinition = { name: 'fixed', description: 'fixed completions', threads: ['main'], create: async () => fake };
    const services = { rolloutEngines: (name: string) => (name === 'fixed' ? definition : undefined) };
    const policy = new BehaviorSubject<PolicySnapshot>({ version: 7, weights: {} });
    const { batches } = await rollouts({ engine: 'fixed', num_generations: 2 }, records.slice(0, 1), policy, services);
    expect(batches[0].policyVersion).toBe(7);
    expect(batches[0].groups[0].completions.map((c) => [c.ids, c.text, c.finishReason])).toEqual([[[5, 6], 'ok', 'eos'], [[5, 7], 'ok', 'eos']]);
    expect(calls).toEqual(['setWeights 7', 'sample 1x2', 'close']);
    await expect(rollouts({ engine: 'missing' }, records.slice(0, 1), undefined, services)).rejects.toThrow(/no rollout engine named "missing" is installed/);
    await expect(rollouts({ engine: 'fixed', overlap: true }, records.slice(0, 1), policy, services)).rejects.toThrow(/rollout engine fixed cannot run on the worker thread/);
  });

  it('with backend webgpu and no engine named, samples with the webgpu engine, overlapping on the main thread', async () => {
    const calls: string[] = [];
    const fake = fixedEngine('webgpu', calls);
    const created: string[] = [];
    const definition: RolloutEngineDefinition = {
      name: 'webgpu',
      description: 'a GPU engine',
      threads: ['main'],
      computesOffThread: true,
      create: async ({ thread }) => (created.push(thread), fake),
    };
    const services = { rolloutEngines: (name: string) => (name === 'webgpu' ? definition : undefined), backend: { name: 'webgpu' } };
    const policy = new BehaviorSubject<PolicySnapshot>({ version: 7, weights: {} });
    const { batches } = await rollouts({ num_generations: 2, overlap: true }, records.slice(0, 1), policy, services);
    expect(batches).toHaveLength(1);
    expect(created).toEqual(['main']);
    expect(calls).toContain('sample 1x2');
  });

  it('picks the engine the graph names, else the backend\'s', () => {
    const installed = (name: string) => name === 'tfjs' || name === 'webgpu';
    expect(rolloutEngineName(undefined, 'webgpu', installed)).toBe('webgpu');
    expect(rolloutEngineName(undefined, 'webgpu', (name) => name === 'tfjs')).toBe('tfjs');
    expect(rolloutEngineName(undefined, 'wasm', installed)).toBe('tfjs');
    expect(rolloutEngineName('tfjs', 'webgpu', installed)).toBe('tfjs');
    expect(rolloutEngineName('worker', 'webgpu', installed)).toBe('tfjs');
    expect(rolloutEngineName('llamacpp', 'webgpu', installed)).toBe('llamacpp');
  });

  it('rejects overlap on the main thread, with a clear message', async () => {
    await expect(rollouts({ overlap: true, engine: 'main' }, records.slice(0, 1))).rejects.toThrow(/overlap: true needs engine: worker/);
  });
});
