// `grpoflow graph FILE --format mermaid|dot` and `grpoflow --version`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { graphToDot, graphToMermaid } from '../../core/graph/draw.js';
import { loadGraphFile } from '../../core/graph/load.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GSM8K = path.join(ROOT, 'graphs/gsm8k-grpo.yaml');
const { graph } = await loadGraphFile(GSM8K);
if (!graph) throw new Error('graphs/gsm8k-grpo.yaml did not load');

function grpoflow(args: string[]) {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin/grpoflow.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

describe('graph drawings', () => {
  it('mermaid: every node with type, version and ports; every edge port to port; the feedback edge dashed and red', () => {
    const text = graphToMermaid(graph);
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('flowchart LR');
    const key = new Map<string, string>();
    for (const node of graph.nodes) {
      const line = lines.find((l) => l.includes(`["<b>${node.id}</b><br/>${node.type} v${node.version}`));
      expect(line, node.id).toBeDefined();
      key.set(node.id, line!.trim().split('[')[0]);
      for (const port of Object.keys(node.node.def.inputs)) expect(line).toMatch(new RegExp(`in: [^<]*\\b${port}\\b`));
    }
    const edgeLines = lines.filter((l) => /^\s+n\d+ (-->|==>|-\.->)\|/.test(l));
    expect(edgeLines.length).toBe(graph.edges.length);
    expect(edgeLines).toContain(`  ${key.get('train_rows')} -->|"rows"| ${key.get('train_prompts')}`); // stream
    expect(edgeLines).toContain(`  ${key.get('format')} -.->|"reward → rewards"| ${key.get('score')}`); // resource, into a list
    expect(edgeLines).toContain(`  ${key.get('train')} ==>|"policy"| ${key.get('evaluate')}`); // latest
    const feedback = edgeLines.filter((l) => l.includes('feedback'));
    expect(feedback).toEqual([`  ${key.get('train')} -.->|"feedback: policy"| ${key.get('rollout')}`]);
    expect(lines.at(-1)).toBe(`  linkStyle ${edgeLines.indexOf(feedback[0])} stroke:#d62728,stroke-width:2px,color:#d62728`);
  });

  it('dot: record nodes with port fields, edges between ports, the feedback edge dashed, red, not ranking', () => {
    const text = graphToDot(graph);
    expect(text.startsWith('digraph "gsm8k-grpo" {\n  rankdir=LR;')).toBe(true);
    expect(text.trim().endsWith('}')).toBe(true);
    expect(text).toContain('"rollout" [label="{{<in_model> model|<in_tokenizer> tokenizer|<in_template> template|<in_prompts> prompts|<in_policy> policy}|rollout\\nrollout.generate\\ v1|{<out_rollouts> rollouts}}"];');
    const edges = text.split('\n').filter((l) => l.includes(' -> '));
    expect(edges.length).toBe(graph.edges.length);
    expect(edges).toContain('  "train_rows":"out_rows" -> "train_prompts":"in_rows" [label="rows", style=solid];');
    expect(edges).toContain('  "base":"out_model" -> "lora":"in_model" [label="model", style=dotted];');
    expect(edges.filter((l) => l.includes('feedback'))).toEqual([
      '  "train":"out_policy" -> "rollout":"in_policy" [label="feedback: policy", style=dashed, color="#d62728", fontcolor="#d62728", constraint=false];',
    ]);
    // Balanced braces in every record label.
    for (const line of text.split('\n').filter((l) => l.includes('[label="{'))) {
      const label = line.slice(line.indexOf('"{'), line.lastIndexOf('}"') + 1);
      expect(label.split('{').length, line).toBe(label.split('}').length);
    }
  });

  it('the CLI draws to stdout, rejects an unknown format (exit 2), and prints its version', () => {
    const dot = grpoflow(['graph', GSM8K, '--format', 'dot']);
    expect(dot.status).toBe(0);
    expect(dot.stdout).toBe(graphToDot(graph));
    const bad = grpoflow(['graph', GSM8K, '--format', 'svg']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--format must be one of mermaid, dot');
    const version = grpoflow(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toBe(`grpoflow ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`);
  });
});
