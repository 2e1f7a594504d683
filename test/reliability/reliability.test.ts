// The reliability suite (issue 19): kill a real run with each signal at a random step and resume it into
// the same --out (records complete, nothing twice, ≤ save_steps − 1 steps lost for SIGKILL, none for the
// others), a launcher that dies (npx), rewards that never return, and bad inputs, each asserting its
// message and exit code. One GRPO step of the tiny graph takes about a second.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/grpoflow.js');
const GRAPH = path.join(import.meta.dirname, 'fixtures/tiny-grpo.yaml');
const root = mkdtempSync(path.join(os.tmpdir(), 'grpo-reliability-'));
// Generous per-test limits: each test runs two or three whole processes, and CI machines (this one: 2
// cores shared by several jobs) can be slow; the runs themselves take 10-30 s each.
vi.setConfig({ testTimeout: 300_000 });
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the tiny graph; `onStep(step, child)` is called once per trainer step seen on stdout. */
function run(args: string[], onStep?: (step: number, child: ChildProcess) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', GRAPH, '--no-tui', '--backend', 'cpu', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let seen = 0;
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const match of stdout.matchAll(/^step (\d+) train /gm)) {
        const step = Number(match[1]);
        if (step > seen) {
          seen = step;
          onStep?.(step, child);
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function trainSteps(out: string): number[] {
  return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; node: string })
    .filter((r) => r.node === 'train')
    .map((r) => r.step);
}

function checkpoints(out: string): number[] {
  const dir = path.join(out, 'checkpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

const summary = (out: string) => JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { wall_s: number; steps: number };
const randomStep = () => 1 + Math.floor(Math.random() * 3); // where to kill: after step 1, 2 or 3
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const noStack = (stderr: string) => expect(stderr, stderr).not.toMatch(/^\s+at /m);

describe('reliability: kills and resumes', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s at a random step checkpoints every step done (exit %i); the resumed run continues the same records', async (signal, exitCode) => {
    const out = path.join(root, signal);
    const at = randomStep();
    const first = await run(['--out', out], (step, child) => step === at && child.kill(signal));
    expect(first.code, `${signal} after step ${at}: ${first.stderr}`).toBe(exitCode);
    const saved = checkpoints(out).at(-1)!;
    const done = Math.max(...trainSteps(out));
    expect(saved, `${signal} after step ${at}: steps lost`).toBe(done); // 0 steps lost
    const firstWall = summary(out).wall_s;

    const resumed = await run(['--out', out, '--resume', path.join(out, 'checkpoints'), '--set', `max_steps=${saved + 2}`]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(trainSteps(out)).toEqual(range(1, saved + 2)); // complete, nothing twice
    expect(summary(out).wall_s).toBeGreaterThan(firstWall);
    const events = readFileSync(path.join(out, 'events.log'), 'utf8');
    expect(events).toContain('[graph] run started'); // the first segment's log is still there
    expect(events).toContain(`resuming from ${path.join(out, 'checkpoints', `checkpoint-${saved}`)}`);
  });

  it('SIGKILL loses at most save_steps − 1 steps; the stale temporary checkpoint folder is removed on resume', async () => {
    const out = path.join(root, 'SIGKILL');
    const at = 2 + randomStep(); // after step 3, 4 or 5 (save_steps 2)
    const first = await run(['--out', out], (step, child) => step === at && child.kill('SIGKILL'));
    expect(first.signal).toBe('SIGKILL');
    const saved = checkpoints(out).at(-1)!;
    expect(at - saved, `killed after step ${at}, newest checkpoint ${saved}`).toBeLessThanOrEqual(1);
    // What a SIGKILL during a checkpoint write leaves: a temporary folder of a process that is gone.
    const stale = path.join(out, 'checkpoints', `.checkpoint-${saved + 2}.tmp-999999999-deadbeef`);
    mkdirSync(stale);

    const resumed = await run(['--out', out, '--resume', path.join(out, 'checkpoints'), '--set', `max_steps=${saved + 2}`]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(trainSteps(out)).toEqual(range(1, saved + 2)); // the redone steps are not duplicated
    expect(existsSync(stale)).toBe(false);
  });

  it('a launcher that dies without passing its signal on (npx: npm exec → sh → node) still gets a checkpoint', async () => {
    const out = path.join(root, 'orphan');
    const command = `"${process.execPath}" "${BIN}" run "${GRAPH}" --no-tui --backend cpu --out "${out}"; true`;
    const shell = spawn('sh', ['-c', command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    await new Promise<void>((resolve) => {
      shell.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/^step 2 train /m.test(stdout)) resolve();
      });
    });
    const orphan = Number(execFileSync('ps', ['-o', 'pid=', '--ppid', String(shell.pid)], { encoding: 'utf8' }).trim());
    expect(orphan).toBeGreaterThan(0);
    shell.kill('SIGKILL');
    // The orphan notices its parent is gone, writes its checkpoint and exits (it has no one to report to).
    const alive = () => {
      try {
        process.kill(orphan, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 60_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(alive()).toBe(false);
    const events = readFileSync(path.join(out, 'events.log'), 'utf8');
    expect(events).toMatch(/the parent process \(pid \d+\) exited: stopping \(SIGHUP\)/);
    expect(checkpoints(out).at(-1)).toBeGreaterThanOrEqual(2);
  });
});

describe('reliability: rewards that never return', () => {
  it.each(['loopFromThirdBatch', 'neverSettlesFromThirdBatch'])('%s: stopped at timeout_s and named; the run checkpoints and exits 1', async (reward) => {
    const out = path.join(root, reward);
    const result = await run(['--out', out, '--set', `reward=${reward}`, '--set', 'timeout_s=2']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('rewards.ts did not return within timeout_s 2 s (an endless loop, or a promise that never settles)');
    expect(result.stderr).toContain('node `score` (reward.score) failed');
    expect(result.stderr.split('\n').filter((l) => l.includes('did not return within')).length).toBe(1); // printed once
    noStack(result.stderr);
    expect(checkpoints(out).at(-1)).toBe(2); // batches 1 and 2 were trained on
  });
});

describe('reliability: bad inputs are one located message, exit 1, before any work', () => {
  it('--out is a file; a checkpoint output_dir is a file', async () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    const out = await run(['--out', file]);
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toBe(`--out ${file}: a file is in the way (a folder is needed there) (EEXIST)`);

    const dir = path.join(root, 'output-dir-file');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'checkpoints'), 'x');
    const ckpt = await run(['--out', dir]);
    expect(ckpt.code).toBe(1);
    expect(ckpt.stderr.trim()).toBe(`train.grpo train output_dir ${path.join(dir, 'checkpoints')}: a file is in the way (a folder is needed there)`);
    expect(existsSync(path.join(dir, 'metrics.jsonl'))).toBe(false);
  });

  it('a checkpoint of another graph is refused unless --resume-anyway; a max_steps already reached is refused', async () => {
    const out = path.join(root, 'SIGTERM'); // written by the SIGTERM test above
    const saved = checkpoints(out).at(-1)!;
    const other = await run(['--out', path.join(root, 'other'), '--resume', path.join(out, 'checkpoints'), '--set', 'nodes.train.with.learning_rate=0.01']);
    expect(other.code).toBe(1);
    expect(other.stderr.trim()).toBe(
      `--resume ${path.join(out, 'checkpoints', `checkpoint-${saved}`)}: it was trained with a different graph (changed: train.learning_rate); resume it anyway with --resume-anyway`,
    );
    const reached = await run(['--out', path.join(root, 'reached'), '--resume', path.join(out, 'checkpoints'), '--set', `max_steps=${saved}`]);
    expect(reached.code).toBe(1);
    expect(reached.stderr).toContain(`the checkpoint is at step ${saved}, and train.grpo train max_steps is ${saved}: nothing is left to train`);
  });
});
