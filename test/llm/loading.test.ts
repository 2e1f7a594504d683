// Loading checkpoints: safetensors read/write (f32, bf16, f16), sharded checkpoints, v4 and v5
// config layouts, the Hugging Face cache layout, and errors that name what is wrong.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { ropeInverseFrequencies } from '../../engines/tfjs/rope.js';
import { findInCache, huggingFaceCacheDir, resolveModelDir } from '../../core/llm/hub.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../core/llm/safetensors.js';
import { LLAMA_TINY, ids2d, maxAbsDiff, readReference } from './fixture.js';

const reference = readReference();
const IDS = reference.chats[1].ids.slice(0, 24);
const rawConfig = () => JSON.parse(readFileSync(`${LLAMA_TINY}/config.json`, 'utf8'));

let work: string;
let base: CausalLM;
let baseLogits: Float32Array;

function logitsOf(model: CausalLM): Float32Array {
  return tf.tidy(() => model.forward(ids2d([IDS])).dataSync() as Float32Array);
}

/** A checkpoint folder made from llama-tiny's tensors, with edits. */
function makeCheckpoint(name: string, options: { config?: object; tensors?: Record<string, HostTensor>; shards?: number } = {}): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(options.config ?? rawConfig()));
  copyFileSync(`${LLAMA_TINY}/generation_config.json`, join(dir, 'generation_config.json'));
  const tensors = options.tensors ?? Object.fromEntries(readSafetensors(`${LLAMA_TINY}/model.safetensors`));
  const shards = options.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype: 'bfloat16' });
    return dir;
  }
  const names = Object.keys(tensors);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = names.filter((_, i) => i % shards === s);
    part.forEach((n) => (weightMap[n] = file));
    // shards in different dtypes: all are read into float32 (the values are bf16-exact)
    writeSafetensors(join(dir, file), Object.fromEntries(part.map((n) => [n, tensors[n]])), { dtype: s % 2 ? 'float32' : 'bfloat16' });
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'loading-'));
  base = await loadModel(LLAMA_TINY);
  baseLogits = logitsOf(base);
});
afterAll(() => {
  base.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('safetensors', () => {
  it('round-trips float32 exactly and rounds bf16/f16 to nearest even', () => {
    const values = new Float32Array([0, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 65504, 2 ** -24, -3.14159, 1e-3]);
    const path = join(work, 'rt.safetensors');
    writeSafetensors(path, { x: { shape: [2, 4], data: values } });
    expect(readSafetensors(path).get('x')).toEqual({ shape: [2, 4], data: values });
    writeSafetensors(path, { x: { shape: [8], data: values } }, { dtype: 'bfloat16' });
    const bf = readSafetensors(path).get('x')!.data;
    // bf16 keeps 8 significant bits: 1+2^-8 is a tie → even (1); 1+3·2^-9 rounds up to 1+2^-7
    expect(Array.from(bf.slice(0, 4))).toEqual([0, -1, 1, 1 + 2 ** -7]);
    expect(Math.abs(bf[6] - -3.140625)).toBe(0);
    writeSafetensors(path, { x: { shape: [8], data: values } }, { dtype: 'float16' });
    const half = readSafetensors(path).get('x')!.data;
    expect(Array.from(half.slice(0, 6))).toEqual([0, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 65504, 2 ** -24]);
    expect(Math.abs(half[7] - 1e-3)).toBeLessThan(1e-6);
  });

  it('names the tensor with an unsupported dtype', () => {
    const header = JSON.stringify({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } });
    const buf = Buffer.alloc(8 + header.length + 8);
    buf.writeBigUInt64LE(BigInt(header.length));
    buf.write(header, 8);
    const path = join(work, 'i64.safetensors');
    writeFileSync(path, buf);
    expect(() => readSafetensors(path)).toThrow(/tensor "ids" has dtype I64/);
  });
});

describe('checkpoints', () => {
  it('bf16 weights are converted exactly (re-saved checkpoint gives identical logits)', async () => {
    const model = await loadModel(makeCheckpoint('resaved'));
    expect(maxAbsDiff(logitsOf(model), baseLogits)).toBe(0);
    model.dispose();
  });

  it('loads a sharded checkpoint (model.safetensors.index.json)', async () => {
    const model = await loadModel(makeCheckpoint('sharded', { shards: 3 }));
    expect(maxAbsDiff(logitsOf(model), baseLogits)).toBe(0);
    model.dispose();
  });

  it('loads a config in the transformers v4 layout (rope_theta, torch_dtype)', async () => {
    const v4 = rawConfig();
    v4.rope_theta = v4.rope_parameters.rope_theta;
    delete v4.rope_parameters;
    v4.torch_dtype = v4.dtype;
    delete v4.dtype;
    const model = await loadModel(makeCheckpoint('v4', { config: v4 }));
    expect(model.config.ropeTheta).toBe(500000);
    expect(model.config.dtype).toBe('bfloat16');
    expect(model.config.eosTokenIds).toEqual([1001, 1004]);
    expect(maxAbsDiff(logitsOf(model), baseLogits)).toBe(0);
    model.dispose();
  });

  it('errors name the missing file, the missing tensor and the tensor with a wrong shape', async () => {
    await expect(loadModel(join(work, 'nowhere-at-all'))).rejects.toThrow(/nowhere-at-all.*no such folder/);
    const noWeights = join(work, 'no-weights');
    mkdirSync(noWeights);
    writeFileSync(join(noWeights, 'config.json'), JSON.stringify(rawConfig()));
    await expect(loadModel(noWeights)).rejects.toThrow(/missing model\.safetensors/);
    const noConfig = join(work, 'no-config');
    mkdirSync(noConfig);
    await expect(loadModel(noConfig)).rejects.toThrow(/missing config\.json/);

    const tensors = Object.fromEntries(readSafetensors(`${LLAMA_TINY}/model.safetensors`));
    const missing = { ...tensors };
    delete missing['model.layers.1.mlp.up_proj.weight'];
    await expect(loadModel(makeCheckpoint('missing-tensor', { tensors: missing }))).rejects.toThrow(/no tensor "model\.layers\.1\.mlp\.up_proj\.weight" \(expected shape \[160,64\]\)/);
    const wrong = { ...tensors, 'model.layers.0.self_attn.k_proj.weight': { shape: [64, 64], data: new Float32Array(64 * 64) } };
    await expect(loadModel(makeCheckpoint('wrong-shape', { tensors: wrong }))).rejects.toThrow(/"model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[64,64\], expected \[32,64\]/);
    const sharded = makeCheckpoint('lost-shard', { shards: 2 });
    rmSync(join(sharded, 'model-00002-of-00002.safetensors'));
    await expect(loadModel(sharded)).rejects.toThrow(/model-00002-of-00002\.safetensors, which is missing/);
  });

  it('an unsupported architecture error lists the supported ones', () => {
    expect(() => parseModelConfig({ ...rawConfig(), architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' })).toThrow(
      /unsupported architecture GPT2LMHeadModel; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/,
    );
  });
});

describe('rope scaling', () => {
  const llama31 = {
    ...rawConfig(), head_dim: 128, hidden_size: 4096, num_attention_heads: 32,
  };
  const scaling = { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' };

  it('reads llama3 scaling from both layouts and applies it as transformers does', () => {
    const v5 = parseModelConfig({ ...llama31, rope_parameters: { rope_theta: 500000, ...scaling } });
    const v4 = parseModelConfig({ ...llama31, rope_parameters: undefined, rope_theta: 500000, rope_scaling: scaling });
    expect(v5.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(v4.ropeScaling).toEqual(v5.ropeScaling);
    const plain = ropeInverseFrequencies({ ...v5, ropeScaling: undefined });
    const scaled = ropeInverseFrequencies(v5);
    // wavelength 2π/f: below 8192/4 = 2048 kept, above 8192 divided by 8, between interpolated
    for (let i = 0; i < plain.length; i++) {
      const wavelen = (2 * Math.PI) / plain[i];
      if (wavelen < 2048) expect(scaled[i]).toBe(plain[i]);
      else if (wavelen > 8192) expect(scaled[i]).toBeCloseTo(plain[i] / 8, 12);
      else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        expect(scaled[i]).toBeCloseTo((1 - smooth) * (plain[i] / 8) + smooth * plain[i], 9);
        expect(scaled[i]).toBeLessThan(plain[i]);
        expect(scaled[i]).toBeGreaterThan(plain[i] / 8);
      }
    }
    expect(plain[0]).toBe(1);
    expect(plain[1]).toBeCloseTo(500000 ** (-2 / 128), 7);
  });

  it('rejects unknown scaling types by name', () => {
    expect(() => parseModelConfig({ ...llama31, rope_parameters: { rope_theta: 1e4, rope_type: 'yarn', factor: 4 } })).toThrow(/"yarn" is not supported/);
  });
});

describe('Hugging Face cache', () => {
  const commit = 'a'.repeat(40);
  let cache: string;
  beforeAll(() => {
    cache = join(work, 'hf-hub');
    const repo = join(cache, 'models--tiny-org--llama-tiny');
    const snapshot = join(repo, 'snapshots', commit);
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), `${commit}\n`);
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(LLAMA_TINY, f), join(snapshot, f));
  });

  it('resolves the cache folder from HF_HUB_CACHE, HF_HOME or the default', () => {
    expect(huggingFaceCacheDir({ HF_HUB_CACHE: '/x/hub-cache', HF_HOME: '/y' })).toBe('/x/hub-cache');
    expect(huggingFaceCacheDir({ HF_HOME: '/y' })).toBe('/y/hub');
    expect(huggingFaceCacheDir({ XDG_CACHE_HOME: '/z' })).toBe('/z/huggingface/hub');
  });

  it('finds a Hub id through refs/main, and loads it', async () => {
    expect(findInCache('tiny-org/llama-tiny', { cacheDir: cache })).toBe(join(cache, 'models--tiny-org--llama-tiny', 'snapshots', commit));
    expect(findInCache('tiny-org/llama-tiny', { cacheDir: cache, revision: commit })).toBeDefined();
    expect(findInCache('tiny-org/other', { cacheDir: cache })).toBeUndefined();
    const model = await loadModel('tiny-org/llama-tiny', { cacheDir: cache });
    expect(maxAbsDiff(logitsOf(model), baseLogits)).toBe(0);
    model.dispose();
  });

  it('says where it looked when a Hub id is not cached and downloading is off', async () => {
    await expect(resolveModelDir('tiny-org/absent', { cacheDir: cache, download: false })).rejects.toThrow(/not in the Hugging Face cache at .*hf-hub/);
  });
});
