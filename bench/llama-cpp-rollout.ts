// The rollout phase of the default job (graphs/arith-grpo.yaml: models/arith-tiny with a LoRA adapter
// r 16 on every projection, 8 prompts × 8 completions × at most 72 tokens, temperature 1) on the llama.cpp
// engine next to the tfjs engine (wasm, one thread, merged sampling as the default job has it), in the
// same process, rounds alternating so both see the same machine load. Prints each engine's seconds per
// batch and tokens/s, the ratio, and the mean |behaviour log-prob (llama.cpp) − trainer log-prob (tfjs)|
// on llama.cpp's rows at the same weights, the gap the trainer's IS correction sees.
// `npm run bench -- llama-cpp-rollout [--rounds 3] [--threads 1] [--type f32]`. Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PolicyWeights, RolloutEngine, SampledRows, SamplingOptions } from '../core/engine/interfaces.js';
import { arithmeticPromptRecord, generateArithmeticProblem } from '../core/data/arithmetic.js';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import { Rng } from '../core/rng.js';
import { parseLlamaCppOptions } from '../engines/llama-cpp/options.js';
import { LlamaCppRolloutEngine } from '../engines/llama-cpp/rollout-engine.js';
import { initBackend } from '../engines/tfjs/backend.js';
import { mainThreadEngine } from '../engines/tfjs/index.js';
import { attachLora, loraSnapshot } from '../engines/tfjs/lora.js';
import { loadModel } from '../engines/tfjs/model-loader.js';

const MODEL = 'models/arith-tiny';

export async function run(log: (line: string) => void = console.log): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: { rounds: { type: 'string', default: '3' }, threads: { type: 'string', default: '1' }, type: { type: 'string', default: 'f32' } },
  });
  const rounds = Number(values.rounds);
  await initBackend('wasm');
  const model = await loadModel(MODEL);
  attachLora(model, { r: 16, alpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
  const tokenizer = await Tokenizer.fromDir(MODEL);
  const template = await ChatTemplate.fromDir(MODEL);
  // A policy a few steps into training: lora_B small and random, so the adapter changes the outputs.
  const rng = new Rng(1);
  const weights: PolicyWeights['weights'] = Object.fromEntries(
    Object.entries(loraSnapshot(model)).map(([name, t]) => [name, { shape: t.shape, data: name.includes('lora_B') ? t.data.map(() => 0.02 * (2 * rng.next() - 1)) : t.data }]),
  );
  const problems = new Rng(5);
  const batches = Array.from({ length: rounds }, (_, r) =>
    Array.from({ length: 8 }, (_, i) => tokenizer.encode(template.render(arithmeticPromptRecord(generateArithmeticProblem(problems, 1), `${r}-${i}`, null).messages, { addGenerationPrompt: true }), { addSpecialTokens: false })),
  );
  const eos = [...new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds])];

  const dir = mkdtempSync(join(tmpdir(), 'grpoflow-bench-llama-rollout-'));
  const tfjs = mainThreadEngine(model, tokenizer);
  const llama = await LlamaCppRolloutEngine.create({
    source: model,
    tokenizer,
    options: parseLlamaCppOptions({ gpu: false, gguf_type: values.type, threads: Number(values.threads) }, '--type/--threads'),
    workDir: dir,
  });
  try {
    for (const engine of [tfjs, llama]) await engine.setWeights({ version: 1, weights });
    const options = (seed: number, merged: boolean): SamplingOptions => ({ maxNewTokens: 72, temperature: 1, logprobTemperature: 1, maxBatch: 64, seed, eosTokenIds: eos, merged });
    const timed = async (engine: RolloutEngine, prompts: number[][], seed: number) => {
      const cpu = process.cpuUsage();
      const rows = await engine.sample(prompts, 8, options(seed, engine === tfjs));
      const used = process.cpuUsage(cpu);
      return { rows, seconds: rows.seconds, cpuSeconds: (used.user + used.system) / 1e6 };
    };
    // Warm-up (tfjs compiles its kernels, llama.cpp creates its context).
    await timed(tfjs, batches[0].slice(0, 2), 99);
    await timed(llama, batches[0].slice(0, 2), 99);
    const results: Record<string, { seconds: number; cpuSeconds: number; tokens: number }[]> = { tfjs: [], 'llama.cpp': [] };
    let gapSum = 0;
    let gapTokens = 0;
    let lastLlamaRows: SampledRows | undefined;
    for (let r = 0; r < rounds; r++) {
      for (const [name, engine] of [['tfjs', tfjs], ['llama.cpp', llama]] as const) {
        const { rows, seconds, cpuSeconds } = await timed(engine, batches[r], 1000 + r);
        results[name].push({ seconds, cpuSeconds, tokens: rows.completionIds.length });
        log(`round ${r + 1} ${name.padEnd(9)} ${seconds.toFixed(2)} s (process CPU ${cpuSeconds.toFixed(2)} s), ${rows.completionIds.length} tokens, ${(rows.completionIds.length / seconds).toFixed(0)} tok/s`);
        if (engine === llama) lastLlamaRows = rows;
      }
      // The trainer's view of llama.cpp's rows at the same weights (tfjs scoring, logits / T, T = 1).
      const trainer = await tfjs.score(lastLlamaRows!, { adapters: 'on', temperature: 1 });
      for (let k = 0; k < trainer.length; k++) gapSum += Math.abs(trainer[k] - lastLlamaRows!.logprobs[k]);
      gapTokens += trainer.length;
    }
    const sum = (xs: { seconds: number; cpuSeconds: number; tokens: number }[]) => xs.reduce((a, x) => ({ seconds: a.seconds + x.seconds, cpuSeconds: a.cpuSeconds + x.cpuSeconds, tokens: a.tokens + x.tokens }), { seconds: 0, cpuSeconds: 0, tokens: 0 });
    const t = sum(results.tfjs);
    const l = sum(results['llama.cpp']);
    const perBatch = { tfjs: t.seconds / rounds, 'llama.cpp': l.seconds / rounds };
    const speedup = t.tokens / t.seconds / (l.tokens / l.seconds);
    const meanGap = gapSum / gapTokens;
    log(`seconds per batch of 64: tfjs ${perBatch.tfjs.toFixed(2)}, llama.cpp ${perBatch['llama.cpp'].toFixed(2)}; llama.cpp tokens/s ÷ tfjs tokens/s = ${(1 / speedup).toFixed(2)} (target ≥ 2)`);
    log(`mean |behaviour log-prob (llama.cpp ${values.type}) − trainer log-prob (tfjs)| over ${gapTokens} tokens: ${meanGap.toExponential(2)}`);
    console.log(
      JSON.stringify({
        bench: 'llama-cpp-rollout',
        ggufType: values.type,
        threads: Number(values.threads),
        rounds,
        secondsPerBatch: perBatch,
        tokensPerSecond: { tfjs: t.tokens / t.seconds, 'llama.cpp': l.tokens / l.seconds },
        cpuSecondsPerBatch: { tfjs: t.cpuSeconds / rounds, 'llama.cpp': l.cpuSeconds / rounds },
        llamaOverTfjsTokensPerSecond: 1 / speedup,
        meanBehaviourTrainerGap: meanGap,
      }),
    );
  } finally {
    await llama.close();
    await tfjs.close();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
