// Loading checkpoints: safetensors read/write (f32, bf16, f16), sharded checkpoints, v4 and v5
// config layouts, the Hugging Face cache layout, and errors that name what is wrong.
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../core/llm/tf.js';
import { initBackend } from '../../core/llm/backend.js';
import { loadModel, type CausalLM } from '../../core/llm/model.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { ropeInverseFrequencies } from '../../core/llm/rope.js';
import { findInCache, huggingFaceCacheDir, resolveModelDir } from '../../core/llm/hub.js';
import { readSafetensors, readSafetensorsHeader, SafetensorsFile, writeSafetensors, type HostTensor } from '../../core/llm/safetensors.js';
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

/** A tensor to place at a byte offset of the data section, with its raw little-endian bytes. */
interface Placed {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  offset: number;
  /** (position within the tensor's bytes, bytes) pieces to write; the rest stays a hole (zeros). */
  pieces: [number, Buffer][];
}

/**
 * A safetensors file whose tensors lie at the given offsets, the gaps covered by zero-filled BF16
 * padding tensors as a well-formed file needs, made with ftruncate: a sparse file that takes no disk
 * space for the gaps.
 */
function writeSparseSafetensors(path: string, placed: Placed[]): number {
  const width = { F32: 4, F16: 2, BF16: 2 };
  const header: Record<string, unknown> = {};
  let cursor = 0;
  for (const [i, t] of [...placed].sort((a, b) => a.offset - b.offset).entries()) {
    if (t.offset > cursor) header[`padding_${i}`] = { dtype: 'BF16', shape: [(t.offset - cursor) / 2], data_offsets: [cursor, t.offset] };
    const end = t.offset + t.shape.reduce((a, b) => a * b, 1) * width[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.offset, end] };
    cursor = end;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const dataStart = 8 + Buffer.byteLength(text);
  const fd = openSync(path, 'w');
  try {
    const prefix = Buffer.alloc(dataStart);
    prefix.writeBigUInt64LE(BigInt(dataStart - 8));
    prefix.write(text, 8);
    writeSync(fd, prefix, 0, prefix.length, 0);
    ftruncateSync(fd, dataStart + cursor);
    for (const t of placed) for (const [at, bytes] of t.pieces) writeSync(fd, bytes, 0, bytes.length, dataStart + t.offset + at);
  } finally {
    closeSync(fd);
  }
  return dataStart + cursor;
}

const f32Bytes = (values: ArrayLike<number>) => Buffer.from(new Float32Array(values).buffer);
const GiB = 2 ** 30;

describe('safetensors past the 2 GiB and 4 GiB offsets (sparse files)', () => {
  it('reads tensors at, across and beyond both offsets through the file handle', () => {
    const path = join(work, 'sparse.safetensors');
    const bf16 = Buffer.alloc(8);
    [1, -2, 0.5, 3].forEach((v, i) => bf16.writeUInt16LE(f32Bytes([v]).readUInt32LE(0) >>> 16, i * 2));
    const f16 = Buffer.alloc(8);
    [0x3c00, 0xc000, 0x3800, 0x4200].forEach((h, i) => f16.writeUInt16LE(h, i * 2)); // 1, -2, 0.5, 3
    // A tensor larger than one read chunk (64 MiB), past 4 GiB, with marks on both sides of the chunk edge.
    const big = 17 * 2 ** 20;
    const edge = 16 * 2 ** 20;
    const size = writeSparseSafetensors(path, [
      { name: 'head', dtype: 'F32', shape: [2], offset: 0, pieces: [[0, f32Bytes([7, 8])]] },
      { name: 'past_2g', dtype: 'F32', shape: [2, 2], offset: 2 * GiB + 64, pieces: [[0, f32Bytes([1.5, -2.5, 3.25, 4])]] },
      { name: 'across_4g', dtype: 'F16', shape: [4], offset: 4 * GiB - 4, pieces: [[0, f16]] },
      { name: 'past_4g', dtype: 'BF16', shape: [4], offset: 4 * GiB + 4096, pieces: [[0, bf16]] },
      { name: 'big_past_4g', dtype: 'F32', shape: [big], offset: 4 * GiB + 8192, pieces: [[0, f32Bytes([11])], [(edge - 1) * 4, f32Bytes([12, 13])], [(big - 1) * 4, f32Bytes([14])]] },
    ]);
    expect(statSync(path).size).toBe(size);
    expect(size).toBeGreaterThan(4 * GiB + big * 4);
    expect(readSafetensorsHeader(path).past_4g).toEqual({ dtype: 'BF16', shape: [4] });
    const file = new SafetensorsFile(path);
    try {
      expect(Array.from(file.read('head').data)).toEqual([7, 8]);
      expect(file.read('past_2g')).toEqual({ shape: [2, 2], data: new Float32Array([1.5, -2.5, 3.25, 4]) });
      expect(Array.from(file.read('across_4g').data)).toEqual([1, -2, 0.5, 3]);
      expect(Array.from(file.read('past_4g').data)).toEqual([1, -2, 0.5, 3]);
      const values = file.read('big_past_4g').data;
      expect([values[0], values[1], values[edge - 1], values[edge], values[edge + 1], values[big - 1]]).toEqual([11, 0, 12, 13, 0, 14]);
    } finally {
      file.close();
    }
  });

  it('loads a model whose weights lie past 2 GiB and 4 GiB in its shard: identical logits', async () => {
    const dir = join(work, 'sparse-model');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(rawConfig()));
    const tensors = [...readSafetensors(`${LLAMA_TINY}/model.safetensors`)];
    let offset = 2 * GiB + 8;
    const placed: Placed[] = tensors.map(([name, t], i) => {
      if (i === Math.floor(tensors.length / 2)) offset = 4 * GiB + 8; // the second half past 4 GiB
      const entry: Placed = { name, dtype: 'F32', shape: t.shape, offset, pieces: [[0, f32Bytes(t.data)]] };
      offset += t.data.length * 4;
      return entry;
    });
    writeSparseSafetensors(join(dir, 'model.safetensors'), placed);
    const model = await loadModel(dir);
    expect(maxAbsDiff(logitsOf(model), baseLogits)).toBe(0);
    model.dispose();
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
