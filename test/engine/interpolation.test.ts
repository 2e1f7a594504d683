import { describe, expect, it } from 'vitest';
import { loadGraphText } from '../../core/graph/load.js';
import { at } from './helpers.js';
import { graphYaml, toyRegistry } from './toy-nodes.js';

const load = (text: string, options: { set?: string[]; env?: Record<string, string> } = {}) =>
  loadGraphText(text, 'g.yaml', { registry: toyRegistry(), env: options.env ?? {}, set: options.set });

const withParams = (params: string, nodes: string) => graphYaml(nodes, `params:\n${params}`);
const configOf = async (text: string, options?: { set?: string[]; env?: Record<string, string> }) => {
  const { graph, diagnostics } = await load(text, options);
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return Object.fromEntries(graph!.nodes.map((n) => [n.id, n.config]));
};

describe('interpolation', () => {
  const nodes = `  src:\n    type: count\n    version: 1\n    with: { n: "\${params.data.count}", start: "\${env.START}" }\n`;

  it('a whole-string reference keeps the value type (param number, env read as a YAML scalar)', async () => {
    const cfg = await configOf(withParams('  data: { count: 4 }\n', nodes), { env: { START: '10' } });
    expect(cfg.src).toEqual({ n: 4, start: 10 });
  });

  it('references inside a longer string are spliced as text; env defaults and $${ escapes', async () => {
    const text = withParams(
      '  who: world\n  dir: "${env.HOME_DIR:-/tmp}"\n',
      `  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n  sink:\n    type: slow-sink\n    in: { items: src.items }\n    with: { label: "hello \${params.who} in \${params.dir}, literal $\${params.who}" }\n`,
    );
    const cfg = await configOf(text);
    expect((cfg.sink as { label: string }).label).toBe('hello world in /tmp, literal ${params.who}');
  });

  it('UNKNOWN_PARAM and UNKNOWN_ENV point at the referencing line', async () => {
    const text = withParams('  data: { count: 4 }\n', `  src:\n    type: count\n    version: 1\n    with:\n      n: "\${params.data.cuont}"\n      start: "\${env.NOPE}"\n`);
    const { diagnostics } = await load(text);
    const p = diagnostics.find((d) => d.code === 'UNKNOWN_PARAM')!;
    expect(p.line).toBe(at(text, 'params.data.cuont').line);
    expect(p.suggestion).toBe('did you mean `params.data.count`?');
    const e = diagnostics.find((d) => d.code === 'UNKNOWN_ENV')!;
    expect(e.line).toBe(at(text, 'env.NOPE').line);
  });

  it('--set a.b=c overrides params.a.b before interpolation (values parsed as YAML scalars)', async () => {
    const cfg = await configOf(withParams('  data: { count: 4 }\n', nodes), { set: ['data.count=7'], env: { START: '1' } });
    expect(cfg.src).toEqual({ n: 7, start: 1 });
  });

  it('--set nodes.ID.with.key=value overrides a node config directly', async () => {
    const cfg = await configOf(withParams('  data: { count: 4 }\n', nodes), { set: ['nodes.src.with.start=-3'], env: { START: '1' } });
    expect(cfg.src).toEqual({ n: 4, start: -3 });
  });

  it('--set errors: unknown param (with suggestion), unknown node, malformed, bad value via the schema', async () => {
    const text = withParams('  data: { count: 4 }\n', nodes);
    const { diagnostics } = await load(text, {
      set: ['data.cont=1', 'nodes.srcc.with.n=1', 'novalue', 'nodes.src.with.n=abc'],
      env: { START: '1' },
    });
    const byCode = (c: string) => diagnostics.filter((d) => d.code === c);
    expect(byCode('UNKNOWN_PARAM')[0].suggestion).toBe('did you mean `count`?');
    expect(byCode('UNKNOWN_PARAM')[0].file).toBe('--set data.cont=1');
    expect(byCode('UNKNOWN_NODE_REF')[0].suggestion).toBe('did you mean `src`?');
    expect(byCode('BAD_SET')).toHaveLength(1);
    const bad = byCode('BAD_CONFIG_VALUE')[0];
    expect(bad.file).toBe('--set nodes.src.with.n=abc');
  });

  it('anchors, aliases and merge keys are resolved; positions point at where values are written', async () => {
    const text = graphYaml(
      `  a:\n    type: count\n    version: 1\n    with: &base\n      n: 2\n      strat: 1\n  b:\n    type: count\n    version: 1\n    with:\n      <<: *base\n      n: 5\n`,
    );
    const { diagnostics } = await load(text);
    // `strat` is written once (in the anchor), used twice: both errors point at the anchor's line.
    const keys = diagnostics.filter((d) => d.code === 'UNKNOWN_CONFIG_KEY');
    expect(keys.map((d) => d.line)).toEqual([at(text, 'strat').line, at(text, 'strat').line]);

    const ok = graphYaml(`  a:\n    type: count\n    version: 1\n    with: &base { n: 2, start: 1 }\n  b:\n    type: count\n    version: 1\n    with:\n      <<: *base\n      n: 5\n  c:\n    type: count\n    version: 1\n    with: *base\n`);
    const cfg = await configOf(ok);
    expect(cfg).toEqual({ a: { n: 2, start: 1 }, b: { n: 5, start: 1 }, c: { n: 2, start: 1 } });
  });

  it('a bad value reached through an alias points at the anchor', async () => {
    const text = graphYaml(`  a:\n    type: count\n    version: 1\n    with: &base { n: -1 }\n  b:\n    type: count\n    version: 1\n    with: *base\n`);
    const bad = (await load(text)).diagnostics.filter((d) => d.code === 'BAD_CONFIG_VALUE');
    expect(bad.map((d) => [d.line, d.col])).toEqual([
      [at(text, '-1').line, at(text, '-1').col],
      [at(text, '-1').line, at(text, '-1').col],
    ]);
  });
});
