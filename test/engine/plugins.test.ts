import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadGraphText } from '../../core/graph/load.js';
import { defineNode, definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { NodeRegistry, PluginLoadError } from '../../core/registry.js';
import { at } from './helpers.js';
import { graphYaml, toyRegistry } from './toy-nodes.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'plugins');
const load = (text: string) => loadGraphText(text, path.join(FIXTURES, 'g.yaml'), { registry: toyRegistry(), env: {} });
const withPlugins = (plugins: string[], nodes = `  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n`) =>
  graphYaml(nodes, `plugins:\n${plugins.map((p) => `  - ${p}\n`).join('')}`);

describe('plugins', () => {
  it('loads the example plugin package from node_modules; its types are namespaced', async () => {
    const text = withPlugins(['grpoflow-plugin-example'], `  q:\n    type: example/static-prompts\n    with: { questions: [{ question: hi }] }\n  up:\n    type: example/uppercase\n    in: { prompts: q.prompts }\n`);
    const { graph, diagnostics } = await load(text);
    expect(diagnostics).toEqual([]);
    expect(graph!.nodes.map((n) => [n.type, n.node.plugin])).toEqual([
      ['example/static-prompts', 'example'],
      ['example/uppercase', 'example'],
    ]);
    expect(graph!.registry.get('example/uppercase')!.origin).toContain('grpoflow-plugin-example');
  });

  it('loads a plugin by relative path', async () => {
    const text = withPlugins(['./local.ts'], `  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n  neg:\n    type: local/negate\n    in: { items: src.items }\n`);
    const { graph, diagnostics } = await load(text);
    expect(diagnostics).toEqual([]);
    expect(graph!.nodes[1].type).toBe('local/negate');
  });

  it('PLUGIN_PATH_NOT_ALLOWED: an absolute path, a path out of the graph folder, a package whose plugin field leaves it; --allow-plugin-path loads them', async () => {
    const absolute = path.join(FIXTURES, 'local.ts');
    const text = withPlugins([absolute, '../explode.yaml', './escaping-package']);
    const found = (await load(text)).diagnostics.filter((d) => d.code === 'PLUGIN_PATH_NOT_ALLOWED');
    expect(found.map((d) => d.line)).toEqual([at(text, absolute).line, at(text, '../explode.yaml').line, at(text, './escaping-package').line]);
    expect(found[0].message).toBe(`plugin path \`${absolute}\` is absolute: a graph may load plugins from node_modules or from its own folder only`);
    expect(found[1].message).toContain(`is outside the graph's folder ${FIXTURES}`);
    expect(found[2].message).toContain(`points its "grpoflow.plugin" field at ${absolute}, outside the package`);
    const allowed = await loadGraphText(withPlugins([absolute]), path.join(FIXTURES, 'g.yaml'), { registry: toyRegistry(), env: {}, allowPluginPath: true });
    expect(allowed.diagnostics).toEqual([]);
  });

  it('UNKNOWN_PLUGIN: a package that is not installed, and a path that does not exist', async () => {
    const text = withPlugins(['grpoflow-plugin-not-installed', './nowhere']);
    const found = (await load(text)).diagnostics.filter((d) => d.code === 'UNKNOWN_PLUGIN');
    expect(found).toHaveLength(2);
    expect(found[0].line).toBe(at(text, 'grpoflow-plugin-not-installed').line);
    expect(found[0].suggestion).toBe('run `npm install grpoflow-plugin-not-installed`');
    expect(found[1].line).toBe(at(text, './nowhere').line);
  });

  it('PLUGIN_API_MISMATCH from package.json, before importing the plugin', async () => {
    const text = withPlugins(['./api-mismatch']);
    const d = (await load(text)).diagnostics.find((x) => x.code === 'PLUGIN_API_MISMATCH')!;
    expect(d.line).toBe(at(text, './api-mismatch').line);
    expect(d.message).toContain('apiVersion 99');
    expect(d.details).toMatchObject({ pluginApiVersion: 99, apiVersion: PLUGIN_API_VERSION });
  });

  it('PLUGIN_API_MISMATCH from definePlugin', async () => {
    const d = (await load(withPlugins(['./old-api.ts']))).diagnostics.find((x) => x.code === 'PLUGIN_API_MISMATCH')!;
    expect(d.message).toContain('plugin API 0');
  });

  it('BAD_PLUGIN for a package without the grpoflow field', async () => {
    const d = (await load(withPlugins(['./not-a-plugin']))).diagnostics.find((x) => x.code === 'BAD_PLUGIN')!;
    expect(d.message).toContain('"grpoflow"');
  });

  it('DUPLICATE_NODE_TYPE: a type registered twice, and a second plugin of the same name', async () => {
    const text = withPlugins(['./dup-type.ts', 'grpoflow-plugin-example', './example-again.ts']);
    const found = (await load(text)).diagnostics.filter((d) => d.code === 'DUPLICATE_NODE_TYPE');
    expect(found.map((d) => d.line)).toEqual([at(text, './dup-type.ts').line, at(text, './example-again.ts').line]);
    expect(found[0].message).toContain('`dup/same` version 1');
  });

  it('the registry: versions, latest, and no partial registration after a failure', () => {
    const registry = new NodeRegistry();
    const v = (version: number) => defineNode({ type: 'n', version, inputs: {}, outputs: {}, config: z.object({}), run: () => ({}) });
    registry.register(definePlugin({ name: 'p', apiVersion: PLUGIN_API_VERSION, nodes: [v(1), v(3)] }), 'test');
    expect(registry.versions('p/n')).toEqual([1, 3]);
    expect(registry.get('p/n')!.version).toBe(3);
    expect(registry.get('p/n', 1)!.version).toBe(1);
    const other = defineNode({ type: 'other', version: 1, inputs: {}, outputs: {}, config: z.object({}), run: () => ({}) });
    expect(() => registry.register(definePlugin({ name: 'q', apiVersion: PLUGIN_API_VERSION, nodes: [other, { ...other }] }), 'test')).toThrow(PluginLoadError);
    expect(registry.get('q/other')).toBeUndefined();
  });

  it('rejects a feedback input that is not a latest port', () => {
    const bad = defineNode({ type: 'f', version: 1, inputs: { w: { type: { name: 'x', kind: 'stream' }, feedback: true } }, outputs: {}, config: z.object({}), run: () => ({}) });
    expect(() => new NodeRegistry().register(definePlugin({ name: 'r', apiVersion: PLUGIN_API_VERSION, nodes: [bad] }), 'test')).toThrow(/feedback inputs must be `latest`/);
  });

  it('rejects a node that declares the reserved output `done`', () => {
    const bad = defineNode({ type: 'b', version: 1, inputs: {}, outputs: { done: { type: { name: 'x', kind: 'stream' } } }, config: z.object({}), run: () => ({}) });
    expect(() => new NodeRegistry().register(definePlugin({ name: 'r', apiVersion: PLUGIN_API_VERSION, nodes: [bad] }), 'test')).toThrow(/reserves/);
  });
});
