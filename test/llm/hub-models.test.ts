// Hub models, tested on a fake Hugging Face cache folder (no network): Hub ids name models and adapters
// in `generate` as in graphs, HF_HUB_OFFLINE stops downloads, the saved token is read, an exported
// adapter records the Hub id, and a merged export's tokenizer_config.json loads in transformers 4.x and 5.x.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runGenerate } from '../../core/cli/commands/generate.js';
import { huggingFaceOffline, huggingFaceToken, hubIdOfCachedFolder } from '../../core/hf-env.js';
import { initBackend } from '../../core/llm/backend.js';
import { resolveModelDir } from '../../core/llm/hub.js';
import { attachLora, savePeftAdapter } from '../../core/llm/lora.js';
import { loadModel } from '../../core/llm/model-loader.js';
import { portableTokenizerConfig, saveModel } from '../../core/llm/save-model.js';
import type { ChatMessage } from '../../core/ports.js';

const FIXTURE = 'test/fixtures/llama-tiny';
const COMMIT = 'a'.repeat(40);
const reference = JSON.parse(readFileSync(`${FIXTURE}/reference.json`, 'utf8')) as Record<'adapter', { messages: ChatMessage[]; greedy: number[] }[]>;

const home = mkdtempSync(join(tmpdir(), 'fake-hf-home-'));
/** Puts the files of `from` into the fake cache as repo `id` at COMMIT, with refs/main pointing at it. */
function cacheRepo(id: string, from: string): string {
  const repo = join(home, 'hub', `models--${id.replace('/', '--')}`);
  const snapshot = join(repo, 'snapshots', COMMIT);
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), COMMIT);
  for (const f of readdirSync(from, { withFileTypes: true })) if (f.isFile()) copyFileSync(join(from, f.name), join(snapshot, f.name));
  return snapshot;
}
const modelSnapshot = cacheRepo('test-org/llama-tiny', FIXTURE);
cacheRepo('test-org/llama-tiny-lora', `${FIXTURE}/adapter`);

const saved = { ...process.env };
beforeAll(async () => {
  await initBackend('cpu');
});
afterEach(() => {
  for (const key of ['HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HF_TOKEN_PATH', 'HUGGING_FACE_HUB_TOKEN']) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function offlineFakeCache(): void {
  process.env.HF_HOME = home;
  delete process.env.HF_HUB_CACHE;
  process.env.HF_HUB_OFFLINE = '1';
}

async function generate(argv: string[]) {
  let out = '';
  let err = '';
  const code = await runGenerate(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('Hugging Face environment', () => {
  it('token: HF_TOKEN first, else the file huggingface-cli login saved (HF_TOKEN_PATH, default HF_HOME/token)', () => {
    writeFileSync(join(home, 'token'), 'hf_saved_by_login\n');
    expect(huggingFaceToken({ HF_HOME: home })).toBe('hf_saved_by_login');
    expect(huggingFaceToken({ HF_HOME: home, HF_TOKEN: 'hf_env' })).toBe('hf_env');
    expect(huggingFaceToken({ XDG_CACHE_HOME: join(home, '..', 'nowhere-xdg') })).toBeUndefined();
    writeFileSync(join(home, 'other-token'), 'hf_other');
    expect(huggingFaceToken({ HF_HOME: home, HF_TOKEN_PATH: join(home, 'other-token') })).toBe('hf_other');
    rmSync(join(home, 'token'));
  });

  it('offline: HF_HUB_OFFLINE read as huggingface_hub reads booleans', () => {
    for (const on of ['1', 'true', 'TRUE', 'yes', 'on']) expect(huggingFaceOffline({ HF_HUB_OFFLINE: on })).toBe(true);
    for (const off of [undefined, '', '0', 'false', 'no']) expect(huggingFaceOffline({ HF_HUB_OFFLINE: off })).toBe(false);
  });

  it('the Hub id of a cache snapshot folder', () => {
    expect(hubIdOfCachedFolder(modelSnapshot)).toBe('test-org/llama-tiny');
    expect(hubIdOfCachedFolder(join(home, 'hub', 'models--meta-llama--Llama-3.2-3B-Instruct', 'snapshots', COMMIT))).toBe('meta-llama/Llama-3.2-3B-Instruct');
    expect(hubIdOfCachedFolder(FIXTURE)).toBeUndefined();
  });
});

describe('Hub ids with a fake cache, offline', () => {
  it('generate --model ORG/NAME --adapter ORG/NAME reproduces transformers (greedy ids of the adapter reference)', async () => {
    offlineFakeCache();
    const chat = reference.adapter[0];
    const messages = join(home, 'messages.json');
    writeFileSync(messages, JSON.stringify(chat.messages));
    const { code, out, err } = await generate([
      '--model', 'test-org/llama-tiny', '--adapter', 'test-org/llama-tiny-lora', '--messages', messages,
      '--temperature', '0', '--max-new-tokens', '12', '--chat-template-kwargs', '{"date_string":"26 Jul 2024"}', '--json', '--backend', 'cpu',
    ]);
    expect(err).not.toMatch(/grpoflow generate:/);
    expect(code).toBe(0);
    expect(JSON.parse(out).completion_ids).toEqual(chat.greedy.slice(0, 12));
  });

  it('HF_HUB_OFFLINE: a Hub id missing from the cache is an error that says so, with no download', async () => {
    offlineFakeCache();
    await expect(resolveModelDir('test-org/not-cached')).rejects.toThrow(/not in the Hugging Face cache at .*; offline \(HF_HUB_OFFLINE is set\), so not downloaded/);
    const { code, err } = await generate(['--model', 'test-org/not-cached', '--prompt', 'hi']);
    expect(code).toBe(1);
    expect(err).toMatch(/model "test-org\/not-cached": .*HF_HUB_OFFLINE/);
  });

  it('an adapter trained on a cached model records the Hub id as base_model_name_or_path', async () => {
    offlineFakeCache();
    const model = await loadModel(await resolveModelDir('test-org/llama-tiny'));
    try {
      attachLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], useRslora: false, seed: 0 });
      const dir = join(home, 'adapter-out');
      await savePeftAdapter(model, dir);
      expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe('test-org/llama-tiny');
    } finally {
      model.dispose();
    }
  });

  it('a merged export of a v5-saved checkpoint: v4-layout config.json beside a tokenizer_config.json both 4.x and 5.x load', async () => {
    const model = await loadModel(modelSnapshot);
    const dir = join(home, 'merged-out');
    try {
      await saveModel(model, dir, { dtype: 'bfloat16', tokenizerDir: modelSnapshot });
    } finally {
      model.dispose();
    }
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ rope_theta: 500000, torch_dtype: 'bfloat16' });
    expect(config).not.toHaveProperty('rope_parameters');
    expect(config).not.toHaveProperty('dtype');
    const source = JSON.parse(readFileSync(`${FIXTURE}/tokenizer_config.json`, 'utf8'));
    expect(source).toMatchObject({ tokenizer_class: 'TokenizersBackend', backend: 'tokenizers' }); // as transformers 5 wrote it
    const tokenizerConfig = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    const { backend: _backend, ...rest } = source;
    expect(tokenizerConfig).toEqual({ ...rest, tokenizer_class: 'PreTrainedTokenizerFast', chat_template: readFileSync(join(dir, 'chat_template.jinja'), 'utf8') });
    expect(portableTokenizerConfig({ extra_special_tokens: ['<a>', '<b>'] }, undefined)).toEqual({ additional_special_tokens: ['<a>', '<b>'] });
  });
});
