// The discovery rule: an installed plugin that `grpoflow nodes` lists is usable by validate/run without
// a `plugins:` entry (grpoflow-plugin-example is installed in this project's node_modules as a workspace).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverPlugins } from '../../core/cli/discover-plugins.js';
import { loadGraphText } from '../../core/graph/load.js';
import { graphYaml, toyRegistry } from './toy-nodes.js';

const FILE = path.join(import.meta.dirname, 'fixtures', 'plugins', 'g.yaml');
const graph = (nodes: string) => graphYaml(nodes);

describe('installed plugins are usable without plugins:', () => {
  it('discovery finds the installed example plugin', () => {
    expect(discoverPlugins(path.dirname(FILE))).toContain('grpoflow-plugin-example');
  });

  it('a graph uses an installed plugin\'s types with no plugins: list', async () => {
    const { graph: resolved, diagnostics } = await loadGraphText(
      graph(`  q:\n    type: example/static-prompts\n    with: { questions: [{ question: hi }] }\n  up:\n    type: example/uppercase\n    in: { prompts: q.prompts }\n`),
      FILE,
      { registry: toyRegistry(), env: {} },
    );
    expect(diagnostics).toEqual([]);
    expect(resolved!.registry.get('example/uppercase')!.origin).toContain('grpoflow-plugin-example');
  });

  it('a namespace no installed plugin provides is still UNKNOWN_NODE_TYPE with a hint', async () => {
    const { diagnostics } = await loadGraphText(graph(`  x:\n    type: nothere/thing\n`), FILE, { registry: toyRegistry(), env: {} });
    expect(diagnostics.map((d) => d.code)).toEqual(['UNKNOWN_NODE_TYPE']);
    expect(diagnostics[0].suggestion).toContain('plugin `nothere` is not loaded');
  });

  it('graphs without namespaced types load no plugin', async () => {
    const { graph: resolved } = await loadGraphText(graph(`  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n`), FILE, { registry: toyRegistry(), env: {} });
    expect(resolved!.registry.hasPlugin('example')).toBe(false);
  });
});
