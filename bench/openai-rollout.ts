// `npm run bench -- openai-rollout [--batches N] [--prompts P] [--generations G] [--tokens T]`
//
// Rollout throughput of the `openai` engine on loopback against 1 and 2 `grpoflow serve` processes (tfjs on
// wasm each), next to the local tfjs engine on this thread, all in the same run on the same batches: the
// default job's rollout (models/arith-tiny, 8 prompts × 8 completions of at most 72 tokens, temperature 1).
// Prints completion tokens/s of each and the ratios to local; the last line is one JSON object. CPU
// seconds (this process plus the servers) sit beside wall seconds: on a shared machine wall time is noisy.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import { Rng } from '../core/rng.js';
import type { RolloutEngine, SamplingOptions } from '../core/engine/interfaces.js';
import { initBackend } from '../engines/tfjs/backend.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { mainThreadEngine } from '../engines/tfjs/index.js';
import { OpenAIRolloutEngine } from '../engines/openai/openai-engine.js';
import { startServe, type ServeProcess } from '../test/engine/serve-process.js';

const MODEL = 'models/arith-tiny';

interface Measured {
  engine: string;
  tokens: number;
  wall_s: number;
  cpu_s: number;
  tokens_per_s: number;
}

/** User + system CPU seconds of a process (Linux /proc). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measure(label: string, engine: RolloutEngine, batches: number[][][], n: number, options: SamplingOptions, servers: ServeProcess[]): Promise<Measured> {
  // Warm-up: kernels compile, caches allocate.
  await engine.sample(batches[0].slice(0, 1), 1, { ...options, maxNewTokens: 4 });
  const cpu = () => ownCpuSeconds() + servers.reduce((sum, s) => sum + cpuSecondsOf(s.child.pid!), 0);
  const cpu0 = cpu();
  const t0 = performance.now();
  let tokens = 0;
  for (const [i, prompts] of batches.entries()) tokens += (await engine.sample(prompts, n, { ...options, seed: i })).completionIds.length;
  const wall = (performance.now() - t0) / 1000;
  const result = { engine: label, tokens, wall_s: wall, cpu_s: cpu() - cpu0, tokens_per_s: tokens / wall };
  console.log(`${label.padEnd(12)} ${tokens} tokens in ${wall.toFixed(1)} s wall, ${result.cpu_s.toFixed(1)} s CPU: ${result.tokens_per_s.toFixed(1)} tokens/s`);
  return result;
}

export async function run(): Promise<unknown> {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: { batches: { type: 'string', default: '3' }, prompts: { type: 'string', default: '8' }, generations: { type: 'string', default: '8' }, tokens: { type: 'string', default: '72' } },
  });
  const [batchCount, promptsPerBatch, n, maxNewTokens] = [values.batches, values.prompts, values.generations, values.tokens].map(Number);
  await initBackend('wasm');
  const tokenizer = await Tokenizer.fromDir(MODEL);
  const template = await ChatTemplate.fromDir(MODEL);
  const rng = new Rng(7);
  const batches = Array.from({ length: batchCount }, () =>
    Array.from({ length: promptsPerBatch }, () => {
      const [a, b] = [rng.int(10), rng.int(10)];
      const text = template.render([{ role: 'user', content: `Sam has ${a} apples and gets ${b} more. How many apples does Sam have?` }], { addGenerationPrompt: true });
      return tokenizer.encode(text, { addSpecialTokens: false });
    }),
  );
  const options: SamplingOptions = { maxNewTokens, temperature: 1, logprobTemperature: 1, eosTokenIds: tokenizer.eosTokenIds, maxBatch: promptsPerBatch * n };
  console.log(`openai-rollout: ${batchCount} batches of ${promptsPerBatch} prompts × ${n} completions ≤ ${maxNewTokens} tokens on ${MODEL}; load average ${loadavg()[0].toFixed(1)}`);

  const servers = await Promise.all([startServe(MODEL), startServe(MODEL)]);
  try {
    const model = await loadModel(MODEL);
    const local = await measure('local tfjs', mainThreadEngine(model, tokenizer), batches, n, options, []);
    const remote = async (count: number) => {
      const engine = new OpenAIRolloutEngine(tokenizer, {
        baseUrls: servers.slice(0, count).map((s) => s.url),
        adapterDir: '/tmp',
        adapterName: 'bench',
        maxInflight: 64,
        maxRetries: 0,
        timeoutMs: 600_000,
        backoffMs: 100,
        vocabSize: tokenizer.vocabSize,
      });
      await engine.connect();
      return measure(`${count} server${count > 1 ? 's' : ''}`, engine, batches, n, options, servers.slice(0, count));
    };
    const one = await remote(1);
    const two = await remote(2);
    const result = {
      bench: 'openai-rollout',
      load_average: loadavg()[0],
      local_tokens_per_s: local.tokens_per_s,
      one_server_tokens_per_s: one.tokens_per_s,
      two_servers_tokens_per_s: two.tokens_per_s,
      ratio_one_server_to_local: one.tokens_per_s / local.tokens_per_s,
      ratio_two_servers_to_local: two.tokens_per_s / local.tokens_per_s,
      ratio_two_to_one: two.tokens_per_s / one.tokens_per_s,
      runs: [local, one, two],
    };
    console.log(`ratios to local: 1 server ${result.ratio_one_server_to_local.toFixed(2)}x, 2 servers ${result.ratio_two_servers_to_local.toFixed(2)}x (2 vs 1: ${result.ratio_two_to_one.toFixed(2)}x)`);
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
