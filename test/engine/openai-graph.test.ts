// The default graph (shortened) with `rollout.generate: {engine: openai}` against two `grpoflow serve`
// processes on loopback: it trains as the local engine does (same seed; mean reward within noise), and
// when one server is SIGKILLed mid-run the run completes with every batch sampled and trained on once.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeProcess } from './serve-process.js';

const STEPS = 3;
const PROMPTS = 4;
const GENERATIONS = 4;
// The default job, shortened: 3 steps of 4 prompts × 4 completions of at most 32 tokens; 8 held-out problems.
const SHORT = [
  '--set', `max_steps=${STEPS}`,
  '--set', `prompts_per_step=${PROMPTS}`,
  '--set', `generations=${GENERATIONS}`,
  '--set', 'completion_tokens=32',
  '--set', 'nodes.train.with.per_device_train_batch_size=8',
  '--set', 'nodes.train.with.gradient_accumulation_steps=2',
  '--set', 'nodes.problems.with.test_size=8',
  '--set', 'nodes.eval.with.n=4',
  '--set', 'nodes.eval.with.greedy=false',
];

let servers: ServeProcess[] = [];
let work: string;

interface Run {
  code: number | null;
  stderr: string;
  records: Record<string, any>[];
}

function runGraph(out: string, extra: string[], onRecordLine?: (line: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/grpoflow.js', 'run', 'graphs/arith-grpo.yaml', '--no-tui', '--out', out, ...SHORT, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      onRecordLine?.(stdout);
    });
    child.on('exit', (code) => {
      let records: Record<string, any>[] = [];
      try {
        records = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      } catch {
        /* the run failed before writing metrics: the code and stderr say why */
      }
      resolve({ code, stderr: stderr + stdout, records });
    });
  });
}

const meanReward = (run: Run) => {
  const steps = run.records.filter((r) => r.node === 'train');
  return steps.reduce((sum, r) => sum + r.reward, 0) / steps.length;
};

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'openai-graph-'));
  servers = await Promise.all([startServe('models/arith-tiny'), startServe('models/arith-tiny')]);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(work, { recursive: true, force: true });
});

describe('the default graph on two grpoflow serve processes', () => {
  it('trains as locally, and survives a server SIGKILLed mid-run with no batch lost or duplicated', async () => {
    const remote = [
      '--set', 'nodes.rollout.with.engine=openai',
      '--set', `nodes.rollout.with.engine_options={base_urls: [${servers.map((s) => s.url).join(', ')}], backoff_ms: 50}`,
    ];
    let killed = false;
    // Both runs at once (the machine has 2 cores; the servers sample while the local run trains).
    const [local, openai] = await Promise.all([
      runGraph(path.join(work, 'local'), []),
      runGraph(path.join(work, 'openai'), remote, (stdout) => {
        // Once the first optimiser step is done, batch 1 or 2 is being sampled: kill a server under it.
        if (!killed && /^step 1 train /m.test(stdout)) {
          killed = true;
          servers[1].child.kill('SIGKILL');
        }
      }),
    ]);
    expect(local.code, local.stderr).toBe(0);
    expect(openai.code, openai.stderr).toBe(0);
    expect(killed).toBe(true);

    for (const run of [local, openai]) {
      const rollouts = run.records.filter((r) => r.node === 'rollout');
      const steps = run.records.filter((r) => r.node === 'train');
      // Every batch sampled once, in order (with overlap, batches sampled ahead of the last step are dropped) ...
      expect(rollouts.map((r) => r.step)).toEqual(Array.from({ length: rollouts.length }, (_, i) => i));
      expect(rollouts.length).toBeGreaterThanOrEqual(STEPS);
      // ... and trained on once: step s holds batch s-1's prompts × G completions, every token of them.
      expect(steps.map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
      for (const step of steps) {
        expect(step['completions/mean_length'] * PROMPTS * GENERATIONS).toBeCloseTo(rollouts[step.step - 1]['rollout/tokens'], 6);
      }
      // The behaviour log-probs the engine recorded are the trainer's own: importance ratios near 1.
      for (const step of steps) expect(Math.abs(step['sampling/importance_sampling_ratio/mean'] - 1)).toBeLessThan(0.02);
    }
    // The failover happened, and was said.
    expect(openai.stderr).toMatch(/retrying on another server/);

    // Same seed, different draws (one seed per request on the servers, per completion locally): the
    // mean training reward agrees within noise (rewards here lie in [-1.5, 3]: ±1 is about 3 standard
    // errors of a 3-step mean of 16-completion batches).
    const retries = openai.stderr.match(/retrying on another server/g)?.length ?? 0;
    console.log(`mean training reward: local ${meanReward(local).toFixed(3)}, openai ${meanReward(openai).toFixed(3)}; ${retries} requests re-sent after the kill`);
    expect(Math.abs(meanReward(openai) - meanReward(local))).toBeLessThan(1);
  }, 600_000);
});
