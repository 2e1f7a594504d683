// Our GGUF files checked against llama.cpp itself (node-llama-cpp's prebuilt CPU build: nothing is
// compiled or downloaded): the llama-tiny fixture exported by core/gguf must give the transformers/peft
// reference's greedy tokens and log-probs, with and without the LoRA adapter GGUF; quantized files must
// load, and llama.cpp must decode our quantized bytes to the values our own decoder gives.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf as parseGguf } from '@huggingface/gguf';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { writeAdapterGguf, writeModelGguf } from '../../core/gguf/export.js';
import { runExportGguf } from '../../core/cli/commands/export-gguf.js';
import { decodeTensor, encodeTensor } from '../../core/gguf/quantize.js';
import { tensorType } from '../../core/gguf/quant-mix.js';
import { ggufTensorName } from '../../core/gguf/llama-family.js';
import type { GgufFileType } from '../../core/gguf/format.js';
import type { HostTensor } from '../../core/llm/safetensors.js';
import { LLAMA_TINY, randomCheckpoint, writeCheckpoint } from './random-checkpoint.js';

const EOS = [1001, 1004];

interface ReferenceChat {
  ids: number[];
  greedy: number[];
  sequence_logprobs: number[];
}
const reference = JSON.parse(readFileSync(`${LLAMA_TINY}/reference.json`, 'utf8')) as { chats: ReferenceChat[]; adapter: ReferenceChat[]; merged: ReferenceChat[] };

let llama: Llama;
let dir: string;
const models: LlamaModel[] = [];

beforeAll(async () => {
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), 'grpoflow-gguf-'));
});

afterAll(async () => {
  for (const m of models) await m.dispose();
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function load(path: string): Promise<LlamaModel> {
  const model = await llama.loadModel({ modelPath: path });
  models.push(model);
  return model;
}

/**
 * One context per call. One thread: ggml's worker threads spin while they wait for each other, and on
 * a busy machine with few cores that makes evaluation 100× slower. f32 KV cache, so an f32 model is
 * computed in f32 throughout.
 */
async function withSequence<T>(model: LlamaModel, adapter: string | undefined, fn: (seq: Awaited<ReturnType<typeof newContext>>['sequence']) => Promise<T>): Promise<T> {
  const { context, sequence } = await newContext(model, adapter);
  try {
    return await fn(sequence);
  } finally {
    await context.dispose();
  }
}

async function newContext(model: LlamaModel, adapter: string | undefined) {
  const context = await model.createContext({
    contextSize: 512,
    threads: 1,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    lora: adapter ? { adapters: [{ filePath: adapter, scale: 1 }] } : undefined,
  });
  return { context, sequence: context.getSequence() };
}

/** log p(token i+1 | tokens ≤ i) for every position, from llama.cpp's full next-token distribution. */
async function sequenceLogprobs(model: LlamaModel, tokens: number[], adapter?: string): Promise<number[]> {
  return withSequence(model, adapter, async (seq) => {
    const input = tokens.map((t, i) => (i < tokens.length - 1 ? ([t, { generateNext: { probabilities: true } }] as const) : t));
    const results = await seq.controlledEvaluate(input as Parameters<typeof seq.controlledEvaluate>[0]);
    return tokens.slice(1).map((next, i) => Math.log(results[i]!.next.probabilities!.get(next as never) ?? 0));
  });
}

async function greedy(model: LlamaModel, prompt: number[], count: number, adapter?: string): Promise<number[]> {
  return withSequence(model, adapter, async (seq) => {
    const out: number[] = [];
    for await (const token of seq.evaluate(prompt as never[], { temperature: 0 })) {
      out.push(token as number);
      if (out.length >= count || EOS.includes(token as number)) break;
    }
    return out;
  });
}

const maxAbs = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
const meanAbs = (a: number[], b: number[]) => a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0) / a.length;
const chatTokens = (c: ReferenceChat) => [...c.ids, ...c.greedy];

async function parsed(path: string) {
  const { metadata, tensorInfos } = await parseGguf(path, { allowLocalFile: true });
  return { metadata: metadata as unknown as Record<string, unknown>, tensorInfos };
}

describe('llama-tiny exported to GGUF, run by llama.cpp (CPU)', () => {
  const files: Partial<Record<GgufFileType | 'adapter', string>> = {};
  const f32Logprobs: number[][] = [];

  beforeAll(async () => {
    for (const type of ['f32', 'f16', 'q8_0', 'q4_k_m'] as const) {
      files[type] = join(dir, `llama-tiny-${type}.gguf`);
      await writeModelGguf({ modelDir: LLAMA_TINY, out: files[type]!, type });
    }
    files.adapter = join(dir, 'llama-tiny-adapter.gguf');
    writeAdapterGguf({ modelDir: LLAMA_TINY, adapterDir: `${LLAMA_TINY}/adapter`, out: files.adapter, type: 'f32' });
  });

  it('@huggingface/gguf parses every file we write', async () => {
    for (const [type, path] of Object.entries(files)) {
      const { metadata, tensorInfos } = await parsed(path!);
      expect(metadata['general.architecture'], type).toBe('llama');
      if (type === 'adapter') {
        expect(metadata['general.type']).toBe('adapter');
        expect(metadata['adapter.type']).toBe('lora');
        expect(metadata['adapter.lora.alpha']).toBe(16);
        expect(tensorInfos).toHaveLength(2 * 7 * 2);
        expect(tensorInfos.find((t) => t.name === 'blk.1.attn_q.weight.lora_b')?.shape.map(Number)).toEqual([8, 64]);
      } else {
        expect(metadata['llama.block_count']).toBe(2);
        expect(metadata['llama.attention.head_count_kv']).toBe(2);
        expect(metadata['tokenizer.ggml.pre']).toBe('llama-bpe');
        expect((metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(1006);
        expect(metadata['tokenizer.ggml.eos_token_id']).toBe(1004);
        expect(metadata['tokenizer.chat_template']).toContain('start_header_id');
        expect(tensorInfos).toHaveLength(21);
        expect(tensorInfos.find((t) => t.name === 'token_embd.weight')?.shape.map(Number)).toEqual([64, 1006]);
      }
    }
  });

  it('f32: greedy tokens equal transformers; log-probs within 1e-3', async () => {
    const model = await load(files.f32!);
    let worst = 0;
    for (const chat of reference.chats) {
      expect(await greedy(model, chat.ids, chat.greedy.length)).toEqual(chat.greedy);
      const logprobs = await sequenceLogprobs(model, chatTokens(chat));
      worst = Math.max(worst, maxAbs(logprobs, chat.sequence_logprobs));
      f32Logprobs.push(logprobs);
    }
    console.log(`[gguf] f32: largest |log-prob - transformers| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-3);
  });

  it('the adapter GGUF on the f32 base gives the PEFT adapter greedy tokens and log-probs', async () => {
    const model = await load(files.f32!);
    let worst = 0;
    for (const chat of reference.adapter) {
      expect(await greedy(model, chat.ids, chat.greedy.length, files.adapter)).toEqual(chat.greedy);
      worst = Math.max(worst, maxAbs(await sequenceLogprobs(model, chatTokens(chat), files.adapter), chat.sequence_logprobs));
    }
    console.log(`[gguf] adapter on f32: largest |log-prob - peft| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-3);
  });

  it('grpoflow export-gguf --adapter --merge writes a model that gives the merged reference (merge_and_unload)', async () => {
    const out = join(dir, 'llama-tiny-merged.gguf');
    let printed = '';
    const code = await runExportGguf(['--model', LLAMA_TINY, '--adapter', `${LLAMA_TINY}/adapter`, '--merge', '--type', 'f32', '--out', out], { out: (t) => (printed += t), err: (t) => (printed += t) });
    expect(code, printed).toBe(0);
    expect(printed).toMatch(/wrote .*llama-tiny-merged.gguf: .* 21 tensors \(21 F32\)/);
    const model = await load(out);
    let worst = 0;
    for (const chat of reference.merged) {
      expect(await greedy(model, chat.ids, chat.greedy.length)).toEqual(chat.greedy);
      worst = Math.max(worst, maxAbs(await sequenceLogprobs(model, chatTokens(chat)), chat.sequence_logprobs));
    }
    console.log(`[gguf] merged f32: largest |log-prob - peft merge_and_unload| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-3);
  });

  it('f16: greedy tokens equal transformers', async () => {
    const model = await load(files.f16!);
    let worst = 0;
    for (const chat of reference.chats) {
      expect(await greedy(model, chat.ids, chat.greedy.length)).toEqual(chat.greedy);
      worst = Math.max(worst, maxAbs(await sequenceLogprobs(model, chatTokens(chat)), chat.sequence_logprobs));
    }
    // ggml's CPU matmul rounds the activations to f16 for f16 weights, so this is not f32-tight.
    console.log(`[gguf] f16: largest |log-prob - transformers| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-2);
  });

  it('q8_0 and q4_k_m load; their mean |log-prob| drift from f32 is reported', async () => {
    expect(f32Logprobs).toHaveLength(reference.chats.length);
    for (const [type, bound] of [['q8_0', 0.05], ['q4_k_m', 0.3]] as const) {
      const model = await load(files[type]!);
      let sum = 0;
      for (const [i, chat] of reference.chats.entries()) sum += meanAbs(await sequenceLogprobs(model, chatTokens(chat)), f32Logprobs[i]);
      const drift = sum / reference.chats.length;
      console.log(`[gguf] ${type}: mean |log-prob - f32 GGUF| ${drift.toFixed(4)} (llama-tiny's rows of 64 are not whole q4_K blocks: q4_k_m falls back to q5_0/q8_0 here)`);
      expect(drift).toBeGreaterThan(0);
      expect(drift).toBeLessThan(bound);
    }
  });
});

describe("llama.cpp decodes our quantized blocks as our decoder does (a model whose rows fit q4_K's 256)", () => {
  // hidden 256, intermediate 512, head_dim 64: q4_k_m puts q4_K on most matrices, q6_K on the output
  // matrix and on attn_v/ffn_down of the last layer; q4_0 and q8_0 fill their own blocks.
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 256,
    intermediate_size: 512,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    vocab_size: 1006,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1000,
    eos_token_id: [1001, 1004],
  };

  for (const type of ['q8_0', 'q4_0', 'q4_k_m'] as const) {
    it(`${type}: llama.cpp on our ${type} file ≈ llama.cpp on f32 weights we quantized and decoded ourselves`, async () => {
      const weights = randomCheckpoint(config, 7);
      const tiedOutput = false;
      // Quantize-then-decode each matrix with the type the file gives it (rows are quantized
      // independently, so this commutes with the q/k row permutation the export applies).
      const roundTripped: Record<string, HostTensor> = {};
      const types = new Set<string>();
      for (const [name, t] of Object.entries(weights)) {
        const ggufName = ggufTensorName(name)!;
        const ggmlType = tensorType(type, { ...ggufName, shape: t.shape }, { numLayers: config.num_hidden_layers, tiedOutput });
        types.add(String(ggmlType));
        roundTripped[name] = { shape: t.shape, data: decodeTensor(ggmlType, encodeTensor(ggmlType, t.data), t.data.length) };
      }
      const original = join(dir, `random-${type}`);
      const decoded = join(dir, `random-${type}-decoded`);
      writeCheckpoint(original, config, weights);
      writeCheckpoint(decoded, config, roundTripped);
      const quantizedFile = join(dir, `random-${type}.gguf`);
      const decodedFile = join(dir, `random-${type}-decoded-f32.gguf`);
      const originalFile = join(dir, `random-${type}-f32.gguf`);
      await writeModelGguf({ modelDir: original, out: quantizedFile, type });
      await writeModelGguf({ modelDir: decoded, out: decodedFile, type: 'f32' });
      await writeModelGguf({ modelDir: original, out: originalFile, type: 'f32' });
      if (type === 'q4_k_m') {
        const { tensorInfos } = await parsed(quantizedFile);
        const byName = new Map(tensorInfos.map((t) => [t.name, Number(t.dtype)]));
        expect(byName.get('blk.0.attn_q.weight')).toBe(12); // q4_K
        expect(byName.get('blk.1.attn_v.weight')).toBe(14); // q6_K (use_more_bits: last layer)
        expect(byName.get('output.weight')).toBe(14);
      }

      const tokens = chatTokens(reference.chats[0]).slice(0, 96);
      const quantized = await sequenceLogprobs(await load(quantizedFile), tokens);
      const ours = await sequenceLogprobs(await load(decodedFile), tokens);
      const unquantized = await sequenceLogprobs(await load(originalFile), tokens);
      const layoutGap = meanAbs(quantized, ours);
      const quantizationGap = meanAbs(quantized, unquantized);
      console.log(`[gguf] random 256-wide model, ${type}: mean |log-prob| vs our decoded weights ${layoutGap.toFixed(4)}, vs unquantized ${quantizationGap.toFixed(4)}`);
      // What remains between llama.cpp's run of our bytes and its run of our decoded values is llama.cpp
      // quantizing the activations too (to 8 bits): about 0.05 here. A wrong block layout decodes to other
      // values and lands about as far off as the unquantized model or farther (0.7 at 4 bits).
      expect(layoutGap).toBeLessThan(0.1);
      if (type !== 'q8_0') expect(layoutGap).toBeLessThan(0.2 * quantizationGap);
    });
  }
});

describe('the other Llama-family layouts in llama.cpp equal our own model (which matches transformers)', () => {
  // No transformers reference exists for these random models; our tfjs model is the reference here: it
  // reproduces transformers on llama-tiny, and test/llm/architectures.test.ts checks the families' wiring.
  const common = {
    vocab_size: 1006, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    rms_norm_eps: 1e-6, max_position_embeddings: 512, rope_theta: 10000, bos_token_id: 1000, eos_token_id: 1004,
  };
  const families: Record<string, Record<string, unknown>> = {
    'qwen2 (q/k/v biases, tied embeddings)': { ...common, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', tie_word_embeddings: true },
    'qwen3 (q/k norms, head_dim 24)': { ...common, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 24, tie_word_embeddings: false },
    'llama 3.1 (llama3 rope scaling, q/k/v/o biases, tied)': {
      ...common, architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: true, tie_word_embeddings: true, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    },
    'mistral (GQA 4:1, untied)': { ...common, architectures: ['MistralForCausalLM'], model_type: 'mistral', num_key_value_heads: 1, sliding_window: null },
  };

  beforeAll(async () => {
    const { tf } = await import('../../engines/tfjs/tf.js');
    await tf.setBackend('cpu');
  });

  for (const [family, raw] of Object.entries(families)) {
    it(`${family}: f32 GGUF log-probs within 3e-3 of our model`, async () => {
      const { tf } = await import('../../engines/tfjs/tf.js');
      const { loadModel } = await import('../../engines/tfjs/model-loader.js');
      const checkpoint = join(dir, family.split(' ')[0]);
      writeCheckpoint(checkpoint, raw, randomCheckpoint(raw, 11));
      const file = `${checkpoint}.gguf`;
      await writeModelGguf({ modelDir: checkpoint, out: file, type: 'f32' });
      const tokens = chatTokens(reference.chats[0]).slice(0, 120);
      const ours = await loadModel(checkpoint);
      const expected = tf.tidy(() => {
        const logits = ours.forward(tf.tensor2d([tokens], [1, tokens.length], 'int32'));
        const logprobs = tf.logSoftmax(logits.squeeze([0])).arraySync() as number[][];
        return tokens.slice(1).map((next, i) => logprobs[i][next]);
      });
      ours.dispose();
      const got = await sequenceLogprobs(await load(file), tokens);
      const worst = maxAbs(got, expected);
      console.log(`[gguf] ${family}: largest |log-prob - ours| ${worst.toExponential(2)}`);
      // llama.cpp's f32 CPU path differs from float32 math by about 1e-3 on these sharper random models
      // (6.5e-4 on llama-tiny); a mapping mistake costs far more (leaving out the llama3 rope factors: 1.4).
      expect(worst).toBeLessThan(3e-3);
    });
  }
});
