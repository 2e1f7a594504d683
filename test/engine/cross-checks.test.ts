// Checks across nodes at validation time, on the shipped arithmetic graph with one setting changed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGraphText } from '../../core/graph/load.js';
import { builtinRegistry } from '../../core/graph/plugin-loader.js';

const file = path.resolve('graphs/arith-grpo.yaml');
const original = readFileSync(file, 'utf8');

/** The graph with the first line matching `pattern` after `after` replaced; returns the text and that line's number. */
function edited(after: string, pattern: RegExp, replacement: string): { text: string; line: number } {
  const lines = original.split('\n');
  const start = lines.findIndex((l) => l.startsWith(after));
  const index = lines.findIndex((l, i) => i > start && pattern.test(l));
  lines[index] = lines[index].replace(pattern, replacement);
  return { text: lines.join('\n'), line: index + 1 };
}

describe('cross-node checks (grpoflow validate)', () => {
  it('the shipped graph passes', async () => {
    const { diagnostics } = await loadGraphText(original, file, { registry: await builtinRegistry(), env: {} });
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it("fails when the trainer's temperature differs from the generator's, at the trainer's temperature line", async () => {
    const { text, line } = edited('  train:', /temperature: \$\{params.temperature\}/, 'temperature: 0.7');
    const { diagnostics } = await loadGraphText(text, file, { registry: await builtinRegistry(), env: {} });
    const errors = diagnostics.filter((d) => d.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'GRAPH_MISMATCH', file, line });
    expect(errors[0].message).toMatch(/train.grpo train computes log-probs at temperature 0.7, but its generator rollout samples at temperature 1/);
    expect(errors[0].suggestion).toMatch(/set train's temperature to 1/);
  });
});
