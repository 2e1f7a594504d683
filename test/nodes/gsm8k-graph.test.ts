// The reference workflow graph: it validates as written (Hub model and dataset), and with --set pointing
// at the llama-tiny fixture and the GSM8K fixture rows it runs two GRPO steps end to end, writing every
// TRL metric, the before/after evaluation, a checkpoint and both exports.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GRAPH = path.join(ROOT, 'graphs/gsm8k-grpo.yaml');

function grpoflow(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/grpoflow.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Issue 4 item 7, plus the trainer's staleness.
const TRL_METRICS = [
  'reward', 'reward_std', 'rewards/format/mean', 'rewards/format/std', 'rewards/correctness/mean', 'rewards/correctness/std',
  'frac_reward_zero_std', 'kl', 'entropy', 'clip_ratio/low_mean', 'clip_ratio/high_mean', 'clip_ratio/region_mean',
  'completions/mean_length', 'completions/max_length', 'completions/clipped_ratio', 'num_tokens', 'learning_rate',
  'grad_norm', 'loss', 'step_time', 'policy/staleness',
];

const out = mkdtempSync(path.join(os.tmpdir(), 'gsm8k-graph-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('graphs/gsm8k-grpo.yaml', () => {
  it('validates as written', async () => {
    const { code, stdout, stderr } = await grpoflow(['validate', GRAPH]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('valid');
  });

  it('holds the reference values', async () => {
    const { loadGraphFile } = await import('../../core/graph/load.js');
    const { graph } = await loadGraphFile(GRAPH);
    const config = (id: string) => graph!.nodes.find((n) => n.id === id)!.config as Record<string, unknown>;
    expect(graph!.seed).toBe(3407);
    expect(config('base').path).toBe('meta-llama/Llama-3.2-3B-Instruct');
    expect(config('lora')).toMatchObject({ r: 64, alpha: 64, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    expect(config('template').name).toBe('llama-3.1');
    expect(config('train_rows')).toMatchObject({ hub: 'openai/gsm8k', config: 'main', split: 'train' });
    expect(config('format')).toMatchObject({ pattern: String.raw`^[\s]*<reasoning>.+?</reasoning>.*?<answer>.+?</answer>[\s]*$`, flags: 's', score: 3 });
    expect(config('train')).toMatchObject({
      learning_rate: 5e-6, weight_decay: 0.1, warmup_ratio: 0.1, lr_scheduler_type: 'cosine', per_device_train_batch_size: 1,
      gradient_accumulation_steps: 4, num_generations: 8, max_completion_length: 1536, max_steps: 1000, save_steps: 250,
      max_grad_norm: 0.1, output_dir: 'grpo_outputs',
    });
    expect(config('rollout')).toMatchObject({ num_generations: 8, max_prompt_length: 512, max_new_tokens: 1536, prompts_per_batch: 4 });
    const system = (config('train_prompts').mapping as { system: string }).system;
    expect(system).toBe('You are given a problem. Think step by step.\nPlace your reasoning between <reasoning> and </reasoning>.\nProvide your final answer between <answer> and </answer>.');
  });

  it("renders exactly GSM8K's question text as the user turn (no stray characters)", async () => {
    const { loadGraphFile } = await import('../../core/graph/load.js');
    const { compileMapping } = await import('../../core/data/mapping.js');
    const { chatTemplate } = await import('../../nodes/chat-template.js');
    const { Tokenizer } = await import('../../core/llm/tokenizer.js');
    const { recordingContext } = await import('./node-context.js');
    const { firstValueFrom } = await import('rxjs');
    const { graph } = await loadGraphFile(GRAPH);
    const node = (id: string) => graph!.nodes.find((n) => n.id === id)!.config as Record<string, unknown>;
    const rows = readFileSync(path.join(ROOT, 'test/fixtures/gsm8k/train.jsonl'), 'utf8').trim().split('\n').slice(0, 3).map((l) => JSON.parse(l) as { question: string; answer: string });
    const { ctx } = recordingContext(chatTemplate.config.parse(node('template')));
    const tokenizer = await Tokenizer.fromDir(path.join(ROOT, 'test/fixtures/llama-tiny'));
    const template = await firstValueFrom((await chatTemplate.run(ctx, { model: undefined, tokenizer })).template!);
    for (const id of ['train_prompts', 'test_prompts']) {
      const toPrompt = compileMapping(node(id).mapping as never);
      for (const row of rows) {
        const prompt = toPrompt({ index: 0, source: 'train.jsonl:1', data: row });
        expect(prompt.messages.find((m) => m.role === 'user')!.content).toBe(row.question);
        const rendered = template.render(prompt.messages, { addGenerationPrompt: true });
        expect(rendered).toContain(`<|start_header_id|>user<|end_header_id|>\n\n${row.question}<|eot_id|>`);
      }
    }
  });

  it('runs two steps on the fixture model and data: every metric, before/after eval, checkpoint, exports', async () => {
    const { code, stderr } = await grpoflow([
      'run', GRAPH, '--no-tui', '--out', out,
      '--set', 'model=../test/fixtures/llama-tiny',
      '--set', 'data_hub=null',
      '--set', 'data_path=../test/fixtures/gsm8k/train.jsonl',
      '--set', 'eval_data_path=../test/fixtures/gsm8k/test.jsonl',
      '--set', 'max_steps=2',
      '--set', 'max_completion_length=16',
      '--set', 'num_generations=2',
      '--set', 'eval_limit=2',
    ]);
    expect(stderr.replace(/^.*(Vulkan|BackendVk).*\n?/gm, '').trim()).toBe('');
    expect(code).toBe(0);

    const records = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const steps = records.filter((r) => r.node === 'train');
    expect(steps.map((r) => r.step)).toEqual([1, 2]);
    for (const step of steps) {
      for (const name of TRL_METRICS) expect(Number.isFinite(step[name]), `${name} at step ${step.step}`).toBe(true);
    }
    expect(steps[1].num_tokens).toBeGreaterThan(steps[0].num_tokens); // cumulative, as TRL
    expect(steps[0].learning_rate).toBe(0); // cosine with warmup starts from 0

    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.steps).toBe(2);
    expect(summary.wall_s).toBeGreaterThan(0);
    for (const label of ['before', 'after']) {
      expect(summary.eval[label]).toMatchObject({ n: 2 });
      expect(summary.eval[label].accuracy).toBeGreaterThanOrEqual(0);
    }
    expect(summary.eval.after.step).toBe(2);
    expect(existsSync(path.join(out, 'grpo_outputs/checkpoint-2/trainer_state.json'))).toBe(true);
    expect(existsSync(path.join(out, 'grpo_saved_lora/adapter_model.safetensors'))).toBe(true);
    const merged = JSON.parse(readFileSync(path.join(out, 'merged_16bit/config.json'), 'utf8'));
    expect(merged.torch_dtype).toBe('bfloat16');
    expect(existsSync(path.join(out, 'merged_16bit/tokenizer.json'))).toBe(true);
  }, 90_000);
});
