import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { CausalLM } from '../engines/tfjs/model.js';
import type { ModelEngineDefinition, ModelHandle } from '../core/engine/model-engine.js';
import { buildByteLevelTokenizerJson } from '../core/llm/tokenizer.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { modelLoad } from './model-load.js';

const FIXTURE = resolve('test/fixtures/llama-tiny');
const reference = (await import('../test/fixtures/llama-tiny/reference.json', { with: { type: 'json' } })).default as {
  tokenize: { text: string; ids: number[] }[];
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function load(config: Record<string, unknown>, baseDir = 'test') {
  const recorded = recordingContext(modelLoad.config.parse(config), { id: 'base', baseDir, services: { seed: 3 } });
  cleanups.push(recorded.runTeardown);
  const out = await modelLoad.run(recorded.ctx, {});
  return { model: await firstValueFrom(out.model!), tokenizer: await firstValueFrom(out.tokenizer!), events: recorded.events };
}

describe('model.load', () => {
  it('loads a folder relative to the graph file, with its tokenizer, and says what it loaded', async () => {
    const { model, tokenizer, events } = await load({ path: 'fixtures/llama-tiny' });
    expect(model.config).toMatchObject({ vocabSize: 1006, hiddenSize: 64, numLayers: 2, eosTokenIds: [1001, 1004] });
    expect(model.dir).toBe(FIXTURE);
    for (const { text, ids } of reference.tokenize) expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(ids);
    // embed + lm_head 2·1006·64, per layer 2 norms + q,k,v,o + 3 MLP projections, final norm.
    const perLayer = 2 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 64 * 160;
    const total = 2 * 1006 * 64 + 2 * perLayer + 64;
    expect(events[0].data).toMatchObject({ dir: FIXTURE, parameters: total });
    expect(events[0].message).toContain(`${total.toLocaleString('en-US')} parameters, 2 layers`);
  });

  it('resolves a Hub id through the Hugging Face cache folder', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'hf-cache-'));
    const commit = 'a'.repeat(40);
    const snapshot = join(cache, 'models--org--tiny', 'snapshots', commit);
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(join(cache, 'models--org--tiny', 'refs'));
    writeFileSync(join(cache, 'models--org--tiny', 'refs', 'main'), commit);
    for (const f of readdirSync(FIXTURE)) if (f !== 'adapter') symlinkSync(join(FIXTURE, f), join(snapshot, f));
    const { model } = await load({ path: 'org/tiny', cache_dir: cache });
    expect(model.dir).toBe(snapshot);
  });

  it('takes the tokenizer from another folder, and refuses one larger than the model vocabulary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(buildByteLevelTokenizerJson(Array.from({ length: 800 }, (_, i) => `<s${i}>`))));
    await expect(load({ path: 'fixtures/llama-tiny', tokenizer: dir })).rejects.toThrow(/has 1056 tokens but the model's vocab_size is 1006/);
    const small = mkdtempSync(join(tmpdir(), 'tok-'));
    writeFileSync(join(small, 'tokenizer.json'), JSON.stringify(buildByteLevelTokenizerJson(['<eos>'])));
    const { tokenizer, model } = await load({ path: 'fixtures/llama-tiny', tokenizer: small });
    expect(tokenizer.vocabSize).toBe(257);
    expect((model as CausalLM).config.vocabSize).toBe(1006);
  });

  it('says what is missing', async () => {
    await expect(load({ path: 'no-such-model' })).rejects.toThrow(/model "no-such-model": no such folder, and not a Hub id/);
    await expect(load({ path: 'fixtures/llama-tiny', tokenizer: 'fixtures' })).rejects.toThrow(/tokenizer: no tokenizer\.json in .*fixtures/);
    expect(() => modelLoad.config.parse({ path: 'x', dtype: 'bfloat16' })).toThrow();
    expect(() => modelLoad.config.parse({})).toThrow();
  });

  it('a missing folder written as a path is reported as missing, not looked up as a Hub id; a malformed config.json names file:line:col', async () => {
    for (const path of ['../models/absent', './absent', 'models/org/absent']) {
      await expect(load({ path })).rejects.toThrow(`model.load base path ${path}: no such folder (looked for ${resolve('test', path)}, relative to the graph's folder)`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'bad-config-'));
    for (const f of readdirSync(FIXTURE)) if (f !== 'adapter' && f !== 'config.json') symlinkSync(join(FIXTURE, f), join(dir, f));
    writeFileSync(join(dir, 'config.json'), '{\n  "model_type": "llama",\n  "hidden_size": 64\n  "vocab_size": 1006\n}\n');
    await expect(load({ path: dir })).rejects.toThrow(`${join(dir, 'config.json')}:4:3: not valid JSON`);
  });
});

describe('model.load with another model engine', () => {
  it('loads through the engine named by `engine:` (found in the run services), and names a missing one', async () => {
    const loaded: string[] = [];
    const handle = { engine: 'fake', config: { vocabSize: 1006, numLayers: 2, hiddenSize: 64 } as ModelHandle['config'], dir: FIXTURE, dispose: () => undefined };
    const fake = {
      name: 'fake',
      load: async (dir: string) => {
        loaded.push(dir);
        return handle;
      },
      parameterCounts: () => ({ base: 1234, trainable: 0 }),
    } as unknown as ModelEngineDefinition;
    const services = { seed: 3, modelEngines: (name: string) => (name === 'fake' ? fake : undefined) };
    const recorded = recordingContext(modelLoad.config.parse({ path: 'fixtures/llama-tiny', engine: 'fake' }), { id: 'base', baseDir: 'test', services });
    const out = await modelLoad.run(recorded.ctx, {});
    expect(await firstValueFrom(out.model!)).toBe(handle);
    expect(loaded).toEqual([FIXTURE]);
    expect(recorded.events[0].message).toContain('1,234 parameters');
    const missing = recordingContext(modelLoad.config.parse({ path: 'fixtures/llama-tiny', engine: 'nope' }), { id: 'base', baseDir: 'test', services });
    await expect(modelLoad.run(missing.ctx, {})).rejects.toThrow('model.load base: no model engine named "nope" is installed (grpoflow nodes lists them)');
  });
});
