import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('grpoflow nodes --markdown', () => {
  const markdown = execFileSync(process.execPath, ['bin/grpoflow.js', 'nodes', '--markdown'], { encoding: 'utf8' });

  it('describes every node with its ports and config fields', () => {
    expect(markdown).toMatch(/^### `train\.grpo` v1$/m);
    expect(markdown).toMatch(/^### `example\/uppercase` v1 — plugin `example`$/m);
    expect(markdown).toContain('| `num_generations` |');
    expect(markdown).toContain('`policy`: latest<policy> (optional) (feedback)');
  });

  it('docs/nodes.md is what the command generates (regenerate it after changing a node)', () => {
    expect(readFileSync('docs/nodes.md', 'utf8')).toBe(markdown);
  });
});
