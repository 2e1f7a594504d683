// The generation half of a GRPO graph, run through the engine on the llama-tiny fixture and GSM8K rows:
// model.load → chat.template → lora.apply; dataset.load → dataset.map → rollout.generate →
// reward.score(format, correctness) → advantage.group → debug.log.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { loadGraphText } from '../../core/graph/load.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import type { TrainingBatch } from '../../core/ports.js';
import { runGraph } from '../../core/runtime/run-graph.js';
import { scoreAnswer } from '../../core/grpo/rewards/correctness.js';

const SYSTEM = 'You are given a problem. Think step by step.\nPlace your reasoning between <reasoning> and </reasoning>.\nProvide your final answer between <answer> and </answer>.';

const GRAPH = `
apiVersion: grpoflow/v1
kind: Graph
metadata:
  name: rollout-pipeline
seed: 7
params:
  generations: 2
nodes:
  base:
    type: model.load
    with: { path: ../fixtures/llama-tiny }
  template:
    type: chat.template
    in: { model: base.model, tokenizer: base.tokenizer }
    with: { variables: { date_string: 26 Jul 2024 } }
  lora:
    type: lora.apply
    in: { model: base.model }
    with: { r: 4, alpha: 8 }
  rows:
    type: dataset.load
    with: { path: ../fixtures/gsm8k/train.jsonl }
  prompts:
    type: dataset.map
    in: { rows: rows.rows }
    with:
      limit: 4
      mapping:
        system: ${JSON.stringify(SYSTEM)}
        user: "\${question}"
        fields: { answer: { from: answer, regex: "####\\\\s*(.*)$" } }
  rollouts:
    type: rollout.generate
    in: { model: lora.model, tokenizer: base.tokenizer, template: template.template, prompts: prompts.prompts }
    with: { num_generations: "\${params.generations}", prompts_per_batch: 2, max_new_tokens: 8 }
  format:
    type: reward.format
  correctness:
    type: reward.correctness
    with: { weight: 0.5 }
  brevity:
    type: reward.length
    with: { target: 0, scale: 0.1 }
  score:
    type: reward.score
    in: { rollouts: rollouts.rollouts, rewards: [format.reward, correctness.reward, brevity.reward] }
  advantages:
    type: advantage.group
    in: { scored: score.scored }
  log:
    type: debug.log
    in: { items: advantages.batches }
    with: { label: batch, maxChars: 1000000 }
`;

describe('rollout pipeline graph', () => {
  it('turns GSM8K rows into scored training batches with group-relative advantages', async () => {
    await initBackend('wasm');
    const file = path.resolve('test/nodes/rollout-pipeline.yaml'); // relative paths resolve against test/nodes
    const { graph, diagnostics } = await loadGraphText(GRAPH, file);
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const handle = runGraph(graph!, { outDir: '/tmp', services: { seed: graph!.seed } });
    const events = lastValueFrom(handle.events$.pipe(toArray()));
    const metrics = lastValueFrom(handle.metrics$.pipe(toArray()));
    expect((await handle.done).status).toBe('completed');

    const logged = (await events).filter((e) => e.node === 'log' && /^batch \d+: /.test(e.message)).map((e) => JSON.parse(e.message.replace(/^batch \d+: /, '')) as TrainingBatch);
    // 4 prompts, 2 per batch.
    expect(logged.map((b) => [b.index, b.policyVersion, b.groups.length])).toEqual([[0, 0, 2], [1, 0, 2]]);

    const rows = readFileSync('test/fixtures/gsm8k/train.jsonl', 'utf8').trim().split('\n').slice(0, 4).map((l) => JSON.parse(l));
    const tokenizer = await Tokenizer.fromDir('test/fixtures/llama-tiny');
    const groups = logged.flatMap((b) => b.groups);
    groups.forEach((group, i) => {
      expect(group.prompt.messages).toEqual([{ role: 'system', content: SYSTEM }, { role: 'user', content: rows[i].question }]);
      expect(group.prompt.fields.answer).toBe(rows[i].answer.split('####')[1].trim());
      expect(group.promptText.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024')).toBe(true);
      expect(group.promptIds).toEqual(tokenizer.encode(group.promptText, { addSpecialTokens: false }));
      expect(group.completions).toHaveLength(2);
      for (const c of group.completions) {
        expect(c.ids.length).toBeGreaterThan(0);
        expect(c.ids.length).toBeLessThanOrEqual(8);
        expect(c.logprobs).toHaveLength(c.ids.length);
        expect(c.text).toBe(tokenizer.decode(c.ids, { skipSpecialTokens: true }));
      }
    });

    for (const batch of logged) {
      expect(batch.rewards.map((r) => [r.name, r.weight])).toEqual([['format', 1], ['correctness', 0.5], ['brevity', 1]]);
      batch.groups.forEach((group, g) => {
        group.completions.forEach((c, k) => {
          expect(batch.rewards[0].values[g][k]).toBe(/^\s*<reasoning>.+?<\/reasoning>.*?<answer>.+?<\/answer>\s*$/s.test(c.text) ? 3 : 0);
          expect(batch.rewards[1].values[g][k]).toBe(scoreAnswer(c.text, String(group.prompt.fields.answer)));
          // The length penalty makes the totals differ within a group, so the advantages are not all zero.
          expect(batch.rewards[2].values[g][k]).toBeCloseTo(-0.1 * [...c.text].length, 12);
          const [f, a, l] = batch.rewards.map((r) => r.values[g][k]);
          expect(batch.totals[g][k]).toBeCloseTo(f + 0.5 * a + l, 12);
        });
        const totals = batch.totals[g];
        const mean = totals.reduce((a, b) => a + b) / totals.length;
        const std = Math.sqrt(totals.reduce((s, r) => s + (r - mean) ** 2, 0) / (totals.length - 1));
        expect(batch.advantages[g]).toHaveLength(2);
        batch.advantages[g].forEach((a, k) => expect(a).toBeCloseTo((totals[k] - mean) / (std + 1e-4), 9));
        expect(Math.abs(batch.advantages[g].reduce((a, b) => a + b))).toBeLessThan(1e-9);
      });
    }
    expect(logged.flatMap((b) => b.advantages.flat()).some((a) => Math.abs(a) > 0.5)).toBe(true);

    const all = await metrics;
    const rewardMetrics = all.filter((m) => m.node === 'advantages');
    expect(rewardMetrics.map((m) => m.step)).toEqual([0, 1]);
    for (const m of rewardMetrics) {
      expect(Object.keys(m.values).sort()).toEqual(
        [
          'frac_reward_zero_std',
          'reward',
          'reward_group_std',
          'reward_std',
          'rewards/brevity/mean',
          'rewards/brevity/std',
          'rewards/correctness/mean',
          'rewards/correctness/std',
          'rewards/format/mean',
          'rewards/format/std',
        ].sort(),
      );
      const batch = logged[m.step];
      const flat = batch.totals.flat();
      expect(m.values.reward).toBeCloseTo(flat.reduce((a, b) => a + b) / flat.length, 12);
    }
    const rollout = all.filter((m) => m.node === 'rollouts');
    expect(rollout).toHaveLength(2);
    expect(rollout.every((m) => m.values['rollout/tokens_per_s'] > 0 && m.values['rollout/batch_time'] > 0)).toBe(true);
    const samples = (await events).filter((e) => e.node === 'score' && typeof e.data?.completion === 'string');
    expect(samples).toHaveLength(2);
    expect(samples[0].data).toMatchObject({ prompt: rows[0].question, completion: logged[0].groups[0].completions[0].text });
    expect(Object.keys(samples[0].data!.rewards as object)).toEqual(['format', 'correctness', 'brevity', 'total']);
    expect((await events).some((e) => e.node === 'lora' && /trainable params: [\d,]+ \|\| all params/.test(e.message))).toBe(true);
  });
});
