// How node-llama-cpp 3.21.1 decodes many sequences at once (issue 14, item 4): a random SmolLM2-135M-
// shaped model written with our own GGUF writer, N sequences × T new tokens, decoded (a) one sequence at
// a time, (b) all at once through `Promise.all` over the sequences of one context, for a few `threads`,
// `batchSize` and `contextSize` settings. Prints tokens/s of each next to the one-at-a-time figure
// and the limit measured in the same run (one sequence's prefill of N × prompt tokens in one batch, the
// most a batched decode of N sequences could reach). `npm run bench -- llama-batching [--type q8_0]
// [--sequences 8] [--new 64] [--prompt 32] [--layers 30]`
//
// What node-llama-cpp 3.21.1 does (read in its dist/evaluator/LlamaContext): `contextSize` is per
// sequence: the llama.cpp context gets contextSize × sequences KV cells, one stream per sequence
// (kv_unified false); `batchSize` defaults to min(contextSize × sequences, 512) and bounds the tokens of
// one llama_decode; each sequence's evaluate() queues its next token and the context dispatches what is
// queued on the next event-loop cycle, so Promise.all over the sequences' generators puts one token of
// each sequence into the same decode. Measured 2026-12-02 on the shared 2-core machine, q8_0, 8 × 64
// tokens (others' jobs running, so rough):
// - quiet moment: limit 311 tok/s; one at a time 71.0; Promise.all over 8 sequences 73.8 (×1.04);
//   batchSize 8: 58.3; contextSize 768: 65.4; threads 2: 86.3 (×1.22), one at a time 60.2.
//   A side probe (no sampling: evaluateWithoutGeneratingNewTokens, one token per sequence per round)
//   ran 8 sequences at 155 tok/s, the same as one sequence's 8-token prefill (155): the decode itself
//   is batched across sequences. The generating path adds about 7 ms per sampled token (greedy over a
//   49,152-token vocabulary), paid sequence by sequence, which eats the batching's gain.
// - busy moment (load ~10): one at a time 32.5, Promise.all 39.2; with threads 2 everything crawled
//   (2–3 tok/s): ggml's worker threads spin waiting for each other, and on busy cores that costs
//   10–100×. That, not the batching, is the 0.3 tok/s of issue 14: give contexts `threads` at most the
//   idle cores.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkFileType, writeModelGguf } from '../core/gguf/export.js';
import { randomCheckpoint, writeCheckpoint } from '../test/gguf/random-checkpoint.js';
import { smolLM2ShapedConfig } from './shapes.js';

export async function run(log: (line: string) => void = console.log): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      type: { type: 'string', default: 'q8_0' },
      sequences: { type: 'string', default: '8' },
      new: { type: 'string', default: '64' },
      prompt: { type: 'string', default: '32' },
      layers: { type: 'string', default: String(smolLM2ShapedConfig.num_hidden_layers) },
    },
  });
  const type = checkFileType(values.type!, '--type');
  const n = Number(values.sequences);
  const newTokens = Number(values.new);
  const promptLength = Number(values.prompt);
  const raw = { ...smolLM2ShapedConfig, num_hidden_layers: Number(values.layers) };

  const dir = mkdtempSync(join(tmpdir(), 'grpoflow-llama-batching-'));
  process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  try {
    let t0 = Date.now();
    writeCheckpoint(join(dir, 'ckpt'), raw, randomCheckpoint(raw, 1));
    const file = join(dir, `model-${type}.gguf`);
    await writeModelGguf({ modelDir: join(dir, 'ckpt'), out: file, type });
    log(`SmolLM2-135M shape (${raw.num_hidden_layers} layers), ${type}: checkpoint + GGUF written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const model = await llama.loadModel({ modelPath: file });
    // Random prompts of ordinary token ids (the random model never samples an eos it would stop at early).
    const prompts = Array.from({ length: n }, (_, s) => Array.from({ length: promptLength }, (_, i) => 1000 + ((s * 7919 + i * 104729) % 40000)));

    const limitContext = await model.createContext({ contextSize: n * promptLength, threads: 1 });
    const limitStart = Date.now();
    await limitContext.getSequence().evaluateWithoutGeneratingNewTokens(prompts.flat() as never[]);
    const limit = (n * promptLength) / ((Date.now() - limitStart) / 1000);
    log(`${`limit: one prefill batch of ${n * promptLength} tokens, threads 1`.padEnd(58)} ${limit.toFixed(1).padStart(7)} tok/s`);
    await limitContext.dispose();
    type Setting = { name: string; sequences: number; contextSize: number; batchSize?: number; threads: number; parallel: boolean };
    const need = promptLength + newTokens;
    const settings: Setting[] = [
      { name: 'one at a time, threads 1', sequences: 1, contextSize: need, threads: 1, parallel: false },
      // contextSize is per sequence in node-llama-cpp 3.x (the context holds contextSize × sequences cells).
      { name: `Promise.all ${n} seqs, threads 1`, sequences: n, contextSize: need, threads: 1, parallel: true },
      { name: `Promise.all ${n} seqs, threads 1, batchSize ${n}`, sequences: n, contextSize: need, batchSize: n, threads: 1, parallel: true },
      { name: `Promise.all ${n} seqs, threads 1, contextSize ${n * need}`, sequences: n, contextSize: n * need, threads: 1, parallel: true },
      // Last: on a machine whose cores are busy, ggml's spinning threads can make these crawl.
      { name: `Promise.all ${n} seqs, threads 2`, sequences: n, contextSize: need, threads: 2, parallel: true },
      { name: 'one at a time, threads 2', sequences: 1, contextSize: need, threads: 2, parallel: false },
    ];
    const results: Record<string, unknown>[] = [];
    let baseline = 0;
    for (const s of settings) {
      const context = await model.createContext({ sequences: s.sequences, contextSize: s.contextSize, batchSize: s.batchSize, threads: s.threads });
      const sequences = Array.from({ length: s.sequences }, () => context.getSequence());
      let stopped = false;
      const decodeOne = async (seq: (typeof sequences)[number], prompt: number[]) => {
        let count = 0;
        for await (const _ of seq.evaluate(prompt as never[], { temperature: 0 })) if (++count >= newTokens || stopped) break;
        await seq.clearHistory();
        return count;
      };
      t0 = Date.now();
      // A setting that cannot make progress is reported, not waited on forever.
      const work = (async () => {
        if (s.parallel) return (await Promise.all(prompts.map((p, i) => decodeOne(sequences[i], p)))).reduce((a, b) => a + b, 0);
        let total = 0;
        for (const p of prompts) if (!stopped) total += await decodeOne(sequences[0], p);
        return total;
      })();
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
      const outcome = await Promise.race([work, deadline]);
      const seconds = (Date.now() - t0) / 1000;
      if (outcome === 'timeout') {
        stopped = true; // each sequence stops after its current step, before the next setting starts
        const done = await work;
        log(`${s.name.padEnd(58)} ${(done / seconds).toFixed(1).padStart(7)} tok/s  stopped after ${seconds.toFixed(0)} s with ${done} of ${n * newTokens} tokens (context ${context.contextSize} cells per sequence)`);
        results.push({ ...s, timedOut: true, tokens: done, seconds, contextCells: context.contextSize });
        await context.dispose();
        continue;
      }
      const tokensPerSecond = (outcome as number) / seconds;
      if (!baseline) baseline = tokensPerSecond;
      log(`${s.name.padEnd(58)} ${tokensPerSecond.toFixed(1).padStart(7)} tok/s  ×${(tokensPerSecond / baseline).toFixed(2)} of one-at-a-time, ×${(tokensPerSecond / limit).toFixed(2)} of the limit (context ${context.contextSize} cells per sequence)`);
      results.push({ ...s, tokensPerSecond, ratio: tokensPerSecond / baseline, ofLimit: tokensPerSecond / limit, contextCells: context.contextSize });
      await context.dispose();
    }
    console.log(JSON.stringify({ bench: 'llama-batching', type, sequences: n, newTokens, promptLength, layers: raw.num_hidden_layers, limitTokensPerSecond: limit, results }));
    await model.dispose();
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
