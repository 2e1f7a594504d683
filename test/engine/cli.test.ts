import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { at } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(import.meta.dirname, 'fixtures');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/grpoflow.js ARGS`; `onStdout` may act on output as it arrives (send SIGINT). */
function grpoflow(args: string[], onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/grpoflow.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('grpoflow CLI', () => {
  it('validate: a graph with three planted mistakes prints all three with codes and line:col, exits 1', async () => {
    const file = path.join(FIXTURES, 'three-mistakes.yaml');
    const text = readFileSync(file, 'utf8');
    const { code, stderr } = await grpoflow(['validate', file]);
    expect(code).toBe(1);
    const pos = (needle: string) => `${file}:${at(text, needle).line}:${at(text, needle).col}`;
    expect(stderr).toContain(`${pos('lable')}: error UNKNOWN_CONFIG_KEY: unknown key \`lable\` in node \`log\` (debug.log) config (did you mean \`label\`?)`);
    expect(stderr).toContain(`${pos('example/upercase')}: error UNKNOWN_NODE_TYPE: unknown node type \`example/upercase\` for node \`shout\` (did you mean \`example/uppercase\`?)`);
    expect(stderr).toContain(`${pos('questions.prompt\n')}: error UNKNOWN_PORT: node \`questions\` (example/static-prompts) has no output \`prompt\` (did you mean \`questions.prompts\`?)`);
    expect(stderr).toContain('3 errors, 0 warnings');
  });

  it('bad usage exits 2: a missing graph argument, an unknown command (with a suggestion)', async () => {
    const missing = await grpoflow(['validate']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: grpoflow validate GRAPH');
    const unknown = await grpoflow(['valdate', 'x.yaml']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command `valdate` (did you mean `validate`?)');
  });

  it('validate: a valid graph exits 0', async () => {
    const { code, stdout } = await grpoflow(['validate', 'graphs/examples/example-plugin.yaml']);
    expect(code).toBe(0);
    expect(stdout).toContain('valid');
  });

  it('nodes --json lists the built-in and the example plugin nodes with ports and config, the engines, architectures and chat templates', async () => {
    const { code, stdout } = await grpoflow(['nodes', '--json']);
    expect(code).toBe(0);
    const listing = JSON.parse(stdout) as Record<string, { name: string; plugin?: string; origin?: string; threads?: string[] }[]>;
    expect(listing.rolloutEngines.find((e) => e.name === 'tfjs')).toMatchObject({ plugin: 'tfjs', threads: ['main', 'worker'] });
    expect(listing.modelEngines.find((e) => e.name === 'tfjs')).toMatchObject({ plugin: 'tfjs' });
    expect(listing.architectures.map((a) => a.name)).toEqual(expect.arrayContaining(['LlamaForCausalLM', 'Qwen3ForCausalLM']));
    expect(listing.chatTemplates.length).toBeGreaterThan(0);
    const nodes = listing.nodes as unknown as { type: string; plugin: string; inputs: Record<string, { type: string; kind: string }>; outputs: Record<string, { type: string }>; config: { properties: Record<string, unknown> } }[];
    const byType = new Map(nodes.map((n) => [n.type, n]));
    expect(byType.get('debug.log')!.plugin).toBe('core');
    expect(byType.get('debug.log')!.inputs.items).toMatchObject({ type: 'any', kind: 'stream' });
    expect(Object.keys(byType.get('debug.log')!.config.properties).sort()).toEqual(['label', 'level', 'maxChars']);
    for (const t of ['example/static-prompts', 'example/uppercase', 'example/reward-length']) expect(byType.get(t)?.plugin).toBe('example');
    expect(byType.get('example/reward-length')!.outputs.reward.type).toBe('reward');
  });

  it('run --no-tui: runs the example graph, prints progress, writes metrics.jsonl and events.log', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'grpoflow-cli-'));
    const { code, stdout } = await grpoflow(['run', 'graphs/examples/example-plugin.yaml', '--no-tui', '--out', out, '--set', 'label=Q']);
    expect(code).toBe(0);
    expect(stdout).toContain('[log] Q 2: ');
    expect(stdout).toContain('WHAT IS 10 - 4?');
    expect(readFileSync(path.join(out, 'events.log'), 'utf8')).toContain('[graph] run completed');
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe('');
  });

  it('run: a failing node exits 1 naming the node', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'grpoflow-cli-'));
    const { code, stderr } = await grpoflow(['run', path.join(FIXTURES, 'explode.yaml'), '--no-tui', '--out', out]);
    expect(code).toBe(1);
    expect(stderr).toContain('node `boom` (clitest/explode) failed: exploded at 3');
  });

  it('run: Ctrl-C (SIGINT) lets nodes tear down and exits 130', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'grpoflow-cli-'));
    let sent = false;
    const { code } = await grpoflow(['run', path.join(FIXTURES, 'ticker.yaml'), '--no-tui', '--out', out], (text, child) => {
      if (!sent && text.includes('step 2 ticks')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(code).toBe(130);
    const events = readFileSync(path.join(out, 'events.log'), 'utf8');
    expect(events).toContain('[ticks] ticker saved its state');
    expect(events).toContain('[graph] run aborted');
    const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.slice(0, 3)).toEqual([0, 1, 2].map((i) => ({ step: i, node: 'ticks', tick: i })));
  });

  it('run writes report.html and a TensorBoard event file (also when interrupted); report redraws it', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'grpoflow-cli-'));
    let sent = false;
    const run = await grpoflow(['run', path.join(FIXTURES, 'ticker.yaml'), '--no-tui', '--out', out], (text, child) => {
      if (!sent && text.includes('step 3 ticks')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(run.code).toBe(130);
    expect(run.stdout).toContain(`report ${path.join(out, 'report.html')}`);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('data-chart="ticks/tick"');
    const [events] = readdirSync(out).filter((f) => f.startsWith('events.out.tfevents.'));
    const decoded = JSON.parse(execFileSync('python3', [path.join(ROOT, 'test/tools/read_tfevents.py'), path.join(out, events)], { encoding: 'utf8' })) as { step?: number; scalars?: Record<string, string> }[];
    expect(decoded.slice(1, 4)).toEqual([0, 1, 2].map((i) => expect.objectContaining({ step: i, scalars: { 'ticks/tick': `${i}.0` } })));

    const other = path.join(out, 'again.html');
    const redraw = await grpoflow(['report', out, '--out', other]);
    expect(redraw.code).toBe(0);
    expect(existsSync(other)).toBe(true);
    const missing = await grpoflow(['report', path.join(out, 'nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`${path.join(out, 'nowhere')}: no such run folder\n`);
  });
});
