// `grpoflow serve` and the `openai` engine end to end on loopback, checked against the transformers
// fixture of llama-tiny: greedy tokens equal, log-probs within 1e-4 (base model and PEFT adapter shipped
// as a policy through the runtime LoRA endpoints); merged requests keep their own seeds; the CLI's errors.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../core/llm/safetensors.js';
import { readPeftAdapterConfig } from '../../core/llm/peft-config.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { rowsOf } from '../../core/engine/rows.js';
import { OpenAIRolloutEngine } from '../../engines/openai/openai-engine.js';
import { LLAMA_TINY, maxAbsDiff, readReference } from '../llm/fixture.js';
import { startServe, type ServeProcess } from './serve-process.js';

const TOL = 1e-4;
const reference = readReference();
let server: ServeProcess;
let tokenizer: Tokenizer;
let adapterDir: string;

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, json };
}

function engine() {
  const adapter = readPeftAdapterConfig(`${LLAMA_TINY}/adapter`);
  return new OpenAIRolloutEngine(tokenizer, {
    baseUrls: [server.url],
    adapterDir,
    adapterName: 'policy',
    maxInflight: 4,
    maxRetries: 1,
    timeoutMs: 60_000,
    backoffMs: 50,
    vocabSize: tokenizer.vocabSize,
    lora: adapter,
  });
}

beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir(LLAMA_TINY);
  adapterDir = mkdtempSync(join(tmpdir(), 'openai-serve-'));
  server = await startServe(LLAMA_TINY);
});
afterAll(async () => {
  await server?.stop();
  rmSync(adapterDir, { recursive: true, force: true });
});

describe('grpoflow serve with the openai engine', () => {
  it('lists the base model', async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json();
    expect(models.data.map((m: { id: string; parent: string | null }) => [m.id, m.parent])).toEqual([['llama-tiny', null]]);
  });

  it('greedy tokens and their log-probs match transformers (base model), and score() matches them', async () => {
    const e = engine();
    await e.connect();
    const chats = reference.chats;
    const sampled = await e.sample(chats.map((c) => c.ids), 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
    const scored = await e.score(rowsOf(chats.map((c) => c.ids), chats.map((c) => c.greedy)), { adapters: 'off', temperature: 1 });
    chats.forEach((chat, i) => {
      const ids = Array.from(sampled.completionIds.subarray(sampled.completionOffsets[i], sampled.completionOffsets[i + 1]));
      expect(ids).toEqual(chat.greedy);
      const want = chat.sequence_logprobs.slice(chat.ids.length - 1);
      expect(maxAbsDiff(sampled.logprobs.subarray(sampled.completionOffsets[i], sampled.completionOffsets[i + 1]), want)).toBeLessThan(TOL);
      expect(maxAbsDiff(scored.subarray(sampled.completionOffsets[i], sampled.completionOffsets[i + 1]), want)).toBeLessThan(TOL);
    });
    expect(sampled.finishReasons).toEqual(chats.map(() => 'length'));
    await e.close();
  });

  it('follows the policy through setWeights: the PEFT adapter loaded at run time gives its greedy tokens; the old version is unloaded', async () => {
    const e = engine();
    await e.connect();
    const weights = Object.fromEntries(readSafetensors(`${LLAMA_TINY}/adapter/adapter_model.safetensors`));
    await e.setWeights({ version: 1, weights });
    await e.setWeights({ version: 2, weights });
    const chats = reference.adapter;
    const sampled = await e.sample(chats.map((c) => c.ids), 1, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
    expect(sampled.policyVersion).toBe(2);
    const on = await e.score(rowsOf(chats.map((c) => c.ids), chats.map((c) => c.greedy)), { adapters: 'on', temperature: 1 });
    const off = await e.score(rowsOf(reference.chats.map((c) => c.ids), reference.chats.map((c) => c.greedy)), { adapters: 'off', temperature: 1 });
    chats.forEach((chat, i) => {
      const at = [sampled.completionOffsets[i], sampled.completionOffsets[i + 1]] as const;
      expect(Array.from(sampled.completionIds.subarray(...at))).toEqual(chat.greedy);
      const want = chat.sequence_logprobs.slice(chat.ids.length - 1);
      expect(maxAbsDiff(sampled.logprobs.subarray(...at), want)).toBeLessThan(TOL);
      expect(maxAbsDiff(on.subarray(...at), want)).toBeLessThan(TOL);
      const base = reference.chats[i];
      expect(maxAbsDiff(off.subarray(...at), base.sequence_logprobs.slice(base.ids.length - 1))).toBeLessThan(TOL);
    });
    const models = await (await fetch(`${server.url}/v1/models`)).json();
    expect(models.data.map((m: { id: string }) => m.id)).toEqual(['llama-tiny', 'policy-v2']);
    await e.close();
    const after = await (await fetch(`${server.url}/v1/models`)).json();
    expect(after.data.map((m: { id: string }) => m.id)).toEqual(['llama-tiny']);
  });

  it('concurrent requests (merged into one engine call) give what each gives alone: each keeps its own seed', async () => {
    const ask = (seed: number, prompt: number[]) =>
      post('/v1/completions', { model: 'llama-tiny', prompt, n: 2, max_tokens: 6, temperature: 1, seed, logprobs: 0, return_tokens_as_token_ids: true });
    const prompts = reference.chats.map((c) => c.ids);
    const alone = [];
    for (const [i, p] of prompts.entries()) alone.push((await ask(100 + i, p)).json);
    const together = (await Promise.all(prompts.map((p, i) => ask(100 + i, p)))).map((r) => r.json);
    const tokens = (answer: any) => answer.choices.map((c: any) => c.logprobs.tokens);
    expect(together.map(tokens)).toEqual(alone.map(tokens));
    // Two different seeds for one prompt give different samples (the seed is really used).
    expect(tokens(alone[0])).not.toEqual(tokens((await ask(999, prompts[0])).json));
  });

  it('answers bad requests with HTTP 400/404 and a message', async () => {
    expect(await post('/v1/completions', { model: 'nope', prompt: [1] })).toMatchObject({ status: 404, json: { error: { message: 'The model `nope` does not exist.' } } });
    expect((await post('/v1/completions', { model: 'llama-tiny', prompt: [] })).status).toBe(400);
    expect((await post('/v1/completions', { model: 'llama-tiny', prompt: [1], stream: true })).json.error.message).toMatch(/stream/);
    expect((await post('/v1/completions', { model: 'llama-tiny', prompt: [99999] })).json.error.message).toMatch(/outside the vocabulary/);
    expect((await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: '/nonexistent' })).json.error.message).toMatch(/missing adapter_config.json/);
    expect((await post('/v1/unload_lora_adapter', { lora_name: 'x' })).status).toBe(404);
  });

  it('refuses bad command lines with a clear message', async () => {
    const run = (...args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(process.execPath, ['bin/grpoflow.js', 'serve', ...args], (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr })),
      );
    const [noModel, badPort, badEngine] = await Promise.all([run(), run('--model', LLAMA_TINY, '--port', 'eighty'), run('--model', LLAMA_TINY, '--engine', 'nope')]);
    expect(noModel).toEqual({ code: 2, stderr: 'grpoflow serve: --model DIR is required\n' });
    expect(badPort.stderr).toMatch(/--port must be a whole number/);
    expect(badEngine.stderr).toMatch(/--engine nope: no such rollout engine \(installed: llama.cpp, openai, tfjs, webgpu\)/);
  });
});
