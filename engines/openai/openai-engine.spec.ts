// The openai engine against a fake server that misbehaves on purpose: bad answers are clear errors,
// failures are retried on another server, nothing is lost or counted twice. Loopback only, in process.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import { OpenAIRolloutEngine, type OpenAIEngineOptions } from './openai-engine.js';
import { openaiRolloutEngine } from './index.js';

type Handler = (body: Record<string, unknown>, path: string, res: ServerResponse) => void | Promise<void>;

interface Fake {
  url: string;
  calls: { path: string; body: Record<string, unknown> }[];
  handler: Handler;
  server: Server;
}

const fakes: Fake[] = [];
let tokenizer: Tokenizer;
let adapterDir: string;
const EOS = 2;

/** A well-behaved answer: n completions of `length` tokens (ids derived from the prompt's first id and the seed). */
function goodAnswer(body: Record<string, unknown>, length = 3, finish: 'length' | 'stop' = 'length') {
  const n = Number(body.n ?? 1);
  const first = (body.prompt as number[])[0];
  return {
    choices: Array.from({ length: n }, (_, i) => {
      const ids = Array.from({ length }, (_, t) => (first * 7 + i * 3 + t + Number(body.seed ?? 0)) % 200 + 10);
      if (finish === 'stop') ids[length - 1] = EOS;
      return {
        index: i,
        text: '',
        logprobs: { tokens: ids.map((id) => `token_id:${id}`), token_logprobs: ids.map((_, t) => -0.5 - t), top_logprobs: null, text_offset: ids.map(() => 0) },
        finish_reason: finish,
        stop_reason: finish === 'stop' ? EOS : null,
      };
    }),
  };
}

async function startFake(handler: Handler, options: { runtimeLora?: boolean } = {}): Promise<Fake> {
  const fake = { calls: [], handler } as unknown as Fake;
  fake.server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const path = req.url ?? '';
    if (path === '/v1/models') return void res.end(JSON.stringify({ data: [{ id: 'base', parent: null }] }));
    const body = text ? JSON.parse(text) : {};
    fake.calls.push({ path, body });
    if (options.runtimeLora !== false && (path === '/v1/load_lora_adapter' || path === '/v1/unload_lora_adapter')) return void res.end('Success');
    await fake.handler(body, path, res);
  });
  await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
  const address = fake.server.address() as { port: number };
  fake.url = `http://127.0.0.1:${address.port}`;
  fakes.push(fake);
  return fake;
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function engineOn(urls: string[], options: Partial<OpenAIEngineOptions> = {}) {
  const engine = new OpenAIRolloutEngine(tokenizer, {
    baseUrls: urls,
    adapterDir,
    adapterName: 'policy',
    maxInflight: 4,
    maxRetries: 3,
    timeoutMs: 2000,
    backoffMs: 5,
    vocabSize: tokenizer.vocabSize,
    lora: { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], useRslora: false },
    ...options,
  });
  await engine.connect();
  return engine;
}

const PROMPTS = [[11, 12], [21, 22], [31], [41, 42, 43]];
const SAMPLING = { maxNewTokens: 3, temperature: 1, seed: 5, eosTokenIds: [EOS] };

beforeAll(async () => {
  tokenizer = await Tokenizer.fromDir('test/fixtures/llama-tiny');
  adapterDir = mkdtempSync(join(tmpdir(), 'openai-spec-'));
});
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => new Promise((resolve) => { f.server.closeAllConnections(); f.server.close(resolve); })));
});
afterAll(() => rmSync(adapterDir, { recursive: true, force: true }));

describe('openai engine', () => {
  it('sends one request per prompt with n, token ids and eos as stop tokens, and lays the answers out as rows', async () => {
    const fake = await startFake((body, _path, res) => json(res, 200, goodAnswer(body, 3, 'stop')));
    const engine = await engineOn([fake.url]);
    const sampled = await engine.sample(PROMPTS, 2, SAMPLING);
    expect(fake.calls.map((c) => c.body.prompt)).toEqual(PROMPTS);
    for (const { body } of fake.calls) {
      expect(body).toMatchObject({ model: 'base', n: 2, max_tokens: 3, logprobs: 0, return_tokens_as_token_ids: true, stop_token_ids: [EOS] });
    }
    expect(sampled.completionOffsets.length).toBe(PROMPTS.length * 2 + 1);
    expect(Array.from(sampled.group)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(sampled.finishReasons.every((r) => r === 'eos')).toBe(true);
    expect(Array.from(sampled.logprobs.subarray(0, 3))).toEqual([-0.5, -1.5, -2.5]);
    // The seed of each prompt's request does not depend on which server answers: the same call asks the same.
    const again = await engine.sample(PROMPTS, 2, SAMPLING);
    expect(Array.from(again.completionIds)).toEqual(Array.from(sampled.completionIds));
  });

  it('writes the policy as a PEFT adapter, loads it under a versioned name and unloads the old one', async () => {
    const fake = await startFake((body, _path, res) => json(res, 200, goodAnswer(body)));
    const engine = await engineOn([fake.url]);
    const weights = { 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [2, 3], data: new Float32Array(6).fill(0.5) } };
    await engine.setWeights({ version: 1, weights });
    await engine.setWeights({ version: 2, weights });
    const sampled = await engine.sample([[11]], 1, SAMPLING);
    expect(sampled.policyVersion).toBe(2);
    const lora = fake.calls.filter((c) => c.path.includes('lora'));
    expect(lora.map((c) => [c.path, c.body.lora_name])).toEqual([
      ['/v1/load_lora_adapter', 'policy-v1'],
      ['/v1/load_lora_adapter', 'policy-v2'],
      ['/v1/unload_lora_adapter', 'policy-v1'],
    ]);
    const config = JSON.parse(readFileSync(join(String(lora[1].body.lora_path), 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] });
    expect(fake.calls.at(-1)!.body.model).toBe('policy-v2');
  });

  it('says what to do when a server cannot load adapters at run time', async () => {
    // As vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING: the endpoints are not there.
    const fake = await startFake((_body, _path, res) => json(res, 404, { detail: 'Not Found' }), { runtimeLora: false });
    const engine = await engineOn([fake.url]);
    await expect(engine.setWeights({ version: 1, weights: { x: { shape: [1, 1], data: new Float32Array(1) } } })).rejects.toThrow(
      /cannot load LoRA adapters at run time.*VLLM_ALLOW_RUNTIME_LORA_UPDATING=True/,
    );
  });

  it('retries HTTP 500 and timeouts on the other server: every prompt answered once, none twice', async () => {
    let failures = 0;
    const flaky = await startFake(async (body, _path, res) => {
      failures++;
      if (failures % 2 === 0) return json(res, 500, { error: 'boom' });
      await new Promise((r) => setTimeout(r, 3000)); // past the 2 s timeout
      json(res, 200, goodAnswer(body));
    });
    const good = await startFake((body, _path, res) => json(res, 200, goodAnswer(body)));
    const warnings: string[] = [];
    const engine = await engineOn([flaky.url, good.url], { onWarning: (m) => warnings.push(m) });
    const sampled = await engine.sample(PROMPTS, 2, SAMPLING);
    expect(failures).toBeGreaterThan(0);
    expect(warnings.some((w) => /HTTP 500/.test(w))).toBe(true);
    // Each prompt's rows come from exactly one answer, in prompt order.
    expect(Array.from(sampled.group)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    // The flaky server never answers in time or well, so every row is the good server's answer to that prompt.
    const answered = good.calls.filter((c) => c.path === '/v1/completions');
    expect(answered.map((c) => String(c.body.prompt)).sort()).toEqual(PROMPTS.map(String).sort());
    PROMPTS.forEach((prompt, g) => {
      const call = answered.find((c) => String(c.body.prompt) === String(prompt))!;
      const expected = goodAnswer(call.body).choices.flatMap((c) => c.logprobs.tokens.map((t) => Number(t.slice('token_id:'.length))));
      expect(Array.from(sampled.completionIds.subarray(sampled.completionOffsets[2 * g], sampled.completionOffsets[2 * g + 2]))).toEqual(expected);
    });
  });

  it.each([
    ['wrong token count', (a: ReturnType<typeof goodAnswer>) => a.choices[0].logprobs.token_logprobs.pop(), /3 tokens but 2 log-probs/],
    ['NaN log-prob', (a: ReturnType<typeof goodAnswer>) => (a.choices[0].logprobs.token_logprobs[1] = Number.NaN), /log-prob null/],
    ['too many tokens', (a: ReturnType<typeof goodAnswer>) => a.choices[0].logprobs.tokens.push('token_id:5') && a.choices[0].logprobs.token_logprobs.push(-1), /over max_tokens 3/],
    ['token strings instead of ids', (a: ReturnType<typeof goodAnswer>) => (a.choices[0].logprobs.tokens[0] = 'Hello'), /--return-tokens-as-token-ids/],
    ['a missing choice', (a: ReturnType<typeof goodAnswer>) => a.choices.pop(), /asked for n=2 completions, got 1/],
    ['a duplicated choice', (a: ReturnType<typeof goodAnswer>) => (a.choices[1].index = 0), /index 0 appears twice/],
  ])('a bad answer (%s) is a clear error naming the server, not a row', async (_what, spoil, message) => {
    const fake = await startFake((body, _path, res) => {
      const answer = goodAnswer(body);
      spoil(answer);
      json(res, 200, answer);
    });
    const engine = await engineOn([fake.url]);
    const failure = engine.sample([[11]], 2, SAMPLING);
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toThrow(fake.url);
  });

  it('gives up with the last error after max_retries when every server fails', async () => {
    const fake = await startFake((_body, _path, res) => json(res, 503, { error: 'overloaded' }));
    const engine = await engineOn([fake.url], { maxRetries: 2 });
    await expect(engine.sample([[11]], 1, SAMPLING)).rejects.toThrow(/failed on every attempt \(3\).*HTTP 503/);
    expect(fake.calls.filter((c) => c.path === '/v1/completions').length).toBe(3);
  });

  it('checks its engine_options with errors that name them', async () => {
    const create = (options: Record<string, unknown>) => openaiRolloutEngine.create({ model: {}, tokenizer, thread: 'main', options });
    await expect(create({})).rejects.toThrow(/engine_options\.base_urls/);
    await expect(create({ base_urls: ['ftp://x'] })).rejects.toThrow(/engine_options\.base_urls\.0/);
    await expect(create({ base_urls: ['http://127.0.0.1:1'], typo: 1 })).rejects.toThrow(/typo/);
  });
});

describe('openai engine failover', () => {
  it('never sends a request back to the server it failed on while another is only busy', async () => {
    // One server refuses connections (as a SIGKILLed one does); the other takes one request at a time.
    const dead = await startFake((_body, _path, res) => void res.socket?.destroy());
    const slow = await startFake(async (body, _path, res) => {
      await new Promise((r) => setTimeout(r, 30));
      json(res, 200, goodAnswer(body));
    });
    const engine = await engineOn([dead.url, slow.url], { maxInflight: 1, maxRetries: 1 });
    const prompts = Array.from({ length: 8 }, (_, i) => [10 + i]);
    const sampled = await engine.sample(prompts, 1, SAMPLING);
    expect(Array.from(sampled.group)).toEqual(prompts.map((_, i) => i));
    // Each prompt failed at most once (on the dead server), then went to the live one.
    expect(slow.calls.filter((c) => c.path === '/v1/completions').length).toBe(prompts.length);
  });
});
