// Resume equality: run 4 steps with checkpoints at 2 and 4; then `--resume` from checkpoint-2 and run
// to 4 again. With the adapter, optimiser moments, step, LoRA-dropout RNG, the generator's position
// (prompts consumed, batch seeds) and the token count restored, steps 3 and 4 give the same metrics.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GRAPH = path.join(import.meta.dirname, 'fixtures/resume-llama-tiny.yaml');
const root = mkdtempSync(path.join(os.tmpdir(), 'grpo-resume-graph-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/grpoflow.js'), 'run', GRAPH, '--no-tui', '--backend', 'cpu', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function trainSteps(out: string): Map<number, Record<string, number>> {
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  const steps = new Map<number, Record<string, number>>();
  for (const line of lines) {
    const { step, node, ...values } = JSON.parse(line);
    if (node === 'train') steps.set(step, values);
  }
  return steps;
}

function listCheckpoints(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

// Wall-clock measurements differ between any two runs.
const TIMINGS = new Set(['step_time', 'busy', 'scheduler/trainer_busy']);

describe('train.grpo resume', () => {
  it('steps after a resume repeat the uninterrupted run exactly', async () => {
    const full = path.join(root, 'full');
    const first = await run(['--out', full]);
    expect(first.code, first.stderr).toBe(0);
    const checkpoint = path.join(full, 'checkpoints/checkpoint-2');
    expect(existsSync(path.join(checkpoint, 'adapter_model.safetensors'))).toBe(true);
    const state = JSON.parse(readFileSync(path.join(checkpoint, 'trainer_state.json'), 'utf8'));
    expect(state).toMatchObject({ step: 2, datasetPosition: { prompts: 4, batches: 2 } });

    const resumed = path.join(root, 'resumed');
    const second = await run(['--out', resumed, '--resume', checkpoint]);
    expect(second.code, second.stderr).toBe(0);

    const a = trainSteps(full);
    const b = trainSteps(resumed);
    expect([...a.keys()]).toEqual([1, 2, 3, 4]);
    expect([...b.keys()]).toEqual([3, 4]);
    for (const step of [3, 4]) {
      const names = Object.keys(a.get(step)!).filter((n) => !TIMINGS.has(n));
      expect(Object.keys(b.get(step)!).filter((n) => !TIMINGS.has(n)).sort()).toEqual(names.sort());
      for (const name of names) expect(b.get(step)![name], `${name} at step ${step}`).toBe(a.get(step)![name]);
    }
    // The run learnt something between the checkpoints (equal metrics are not trivially equal).
    expect(a.get(3)!.grad_norm).toBeGreaterThan(0);
    expect(a.get(3)!.loss).not.toBe(a.get(4)!.loss);

    // Resuming from the newest checkpoint of a finished run is refused before any work (issue 19: a step
    // count already reached used to be accepted silently), and says how to continue.
    const again = await run(['--out', path.join(root, 'again'), '--resume', path.join(full, 'checkpoints')]);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toContain('the checkpoint is at step 4, and train.grpo train max_steps is 4: nothing is left to train; raise max_steps');
    expect(existsSync(path.join(root, 'again', 'metrics.jsonl'))).toBe(false);
  }, 120_000);

  it('with filter_groups (dynamic sampling): the checkpoint counts every batch drawn, and the resumed steps repeat the run', async () => {
    // Rewards in words over 3-token completions tie often, so groups are dropped and extra batches drawn.
    const sets = ['nodes.train.with.filter_groups=true', 'nodes.length.with.unit=words', 'nodes.rollout.with.max_new_tokens=3', 'nodes.train.with.max_completion_length=3'];
    const setArgs = sets.flatMap((s) => ['--set', s]);
    const full = path.join(root, 'filter-full');
    const first = await run(['--out', full, ...setArgs]);
    expect(first.code, first.stderr).toBe(0);
    const checkpoint = path.join(full, 'checkpoints/checkpoint-2');
    const { datasetPosition } = JSON.parse(readFileSync(path.join(checkpoint, 'trainer_state.json'), 'utf8'));
    const a = trainSteps(full);
    const drawn = [1, 2].reduce((n, step) => n + a.get(step)!['filter_groups/num_gen_batches'], 0);
    expect(drawn).toBeGreaterThan(2); // extra batches were drawn before the checkpoint
    expect(datasetPosition).toEqual({ batches: drawn, prompts: 2 * drawn });

    const resumed = path.join(root, 'filter-resumed');
    const second = await run(['--out', resumed, '--resume', checkpoint, ...setArgs]);
    expect(second.code, second.stderr).toBe(0);
    const b = trainSteps(resumed);
    expect([...b.keys()]).toEqual([3, 4]);
    for (const step of [3, 4]) {
      for (const name of Object.keys(a.get(step)!).filter((n) => !TIMINGS.has(n))) expect(b.get(step)![name], `${name} at step ${step}`).toBe(a.get(step)![name]);
    }
  }, 300_000);

  it('Ctrl-C writes a checkpoint of the steps done so far, and the run resumes from it', async () => {
    const out = path.join(root, 'interrupted');
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/grpoflow.js'), 'run', GRAPH, '--no-tui', '--backend', 'cpu', '--out', out, '--set', 'max_steps=40', '--set', 'nodes.train.with.save_steps=0'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let signalled = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!signalled && /^step 2 train /m.test(stdout)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    const steps = listCheckpoints(path.join(out, 'checkpoints'));
    expect(steps.length).toBe(1);
    expect(steps[0]).toBeGreaterThanOrEqual(2);
    expect(steps[0]).toBeLessThan(40);
    const resumed = await run(['--out', path.join(root, 'after-interrupt'), '--resume', path.join(out, 'checkpoints'), '--set', `max_steps=${steps[0] + 1}`]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect([...trainSteps(path.join(root, 'after-interrupt')).keys()]).toEqual([steps[0] + 1]);
  }, 60_000);

  it('a missing checkpoint folder is a clear error', async () => {
    const { code, stderr } = await run(['--out', path.join(root, 'bad'), '--resume', path.join(root, 'nope')]);
    expect(code).toBe(1);
    expect(stderr).toContain(`--resume ${path.join(root, 'nope')}: no such folder`);
  });
});
