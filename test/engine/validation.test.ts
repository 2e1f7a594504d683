import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../core/graph/diagnostics.js';
import { loadGraphFile, loadGraphText } from '../../core/graph/load.js';
import { at } from './helpers.js';
import { graphYaml, toyRegistry } from './toy-nodes.js';

async function check(text: string, options: { set?: string[]; env?: Record<string, string> } = {}) {
  return loadGraphText(text, 'g.yaml', { registry: toyRegistry(), env: options.env ?? {}, set: options.set });
}
function only(diagnostics: Diagnostic[], code: string): Diagnostic {
  const found = diagnostics.filter((d) => d.code === code);
  expect(found, JSON.stringify(diagnostics, null, 2)).toHaveLength(1);
  return found[0];
}

describe('graph validation', () => {
  it('accepts a valid graph and applies config defaults', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    with: { n: 3 }\n  sink:\n    type: slow-sink\n    in: { items: src.items }\n`);
    const { graph, diagnostics } = await check(text);
    expect(diagnostics).toEqual([]);
    expect(graph!.nodes.map((n) => n.id)).toEqual(['src', 'sink']);
    expect(graph!.nodes[0].config).toEqual({ n: 3, start: 0 });
    expect(graph!.nodes[1].config).toEqual({ delayMs: 5, label: 'sink' });
    expect(graph!.edges).toEqual([
      { from: { node: 'src', port: 'items' }, to: { node: 'sink', port: 'items' }, index: 0, kind: 'stream', buffer: 2, feedback: false },
    ]);
  });

  it('FILE_NOT_FOUND for a graph file that cannot be read', async () => {
    const { diagnostics } = await loadGraphFile('/nonexistent/graph.yaml', { registry: toyRegistry() });
    expect(diagnostics.map((d) => [d.code, d.file])).toEqual([['FILE_NOT_FOUND', '/nonexistent/graph.yaml']]);
  });

  it('YAML_SYNTAX: reports the parser position', async () => {
    const text = graphYaml(`  src:\n    type: count\n    type: double\n`);
    const d = only((await check(text)).diagnostics, 'YAML_SYNTAX');
    expect([d.line, d.col]).toEqual([at(text, 'type: double').line, at(text, 'type: double').col]);
    expect(d.message).toContain('unique');
  });

  it('YAML_SYNTAX: only the first error, not the cascade that follows from it', async () => {
    const text = graphYaml(`  src:\n    type: count\n   with: { n: 1 }\n  b: [\n    c: {\n`);
    const d = only((await check(text)).diagnostics, 'YAML_SYNTAX');
    expect(d.message).toMatch(/\(the parser reports \d+ more errors? after it, most following from this one\)$/);
    expect(d.details!.more).toBeGreaterThan(0);
  });

  it('BAD_GRAPH_FIELD: wrong apiVersion, unknown top-level key with suggestion', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n`, 'parms: {}\n').replace('grpoflow/v1', 'grpoflow/v9');
    const { diagnostics } = await check(text);
    const codes = diagnostics.filter((d) => d.code === 'BAD_GRAPH_FIELD');
    expect(codes).toHaveLength(2);
    const api = codes.find((d) => d.message.includes('apiVersion'))!;
    expect([api.line, api.col]).toEqual([at(text, 'grpoflow/v9').line, at(text, 'grpoflow/v9').col]);
    const key = codes.find((d) => d.message.includes('parms'))!;
    expect([key.line, key.col]).toEqual([at(text, 'parms').line, 1]);
    expect(key.suggestion).toBe('did you mean `params`?');
  });

  it('BAD_GRAPH_FIELD: a misspelled node field points at its line', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    wiht: { n: 1 }\n`);
    const d = only((await check(text)).diagnostics, 'BAD_GRAPH_FIELD');
    expect(d.line).toBe(at(text, 'wiht').line);
    expect(d.suggestion).toBe('did you mean `with`?');
  });

  it('UNKNOWN_NODE_TYPE with a suggestion', async () => {
    const text = graphYaml(`  src:\n    type: cuont\n    with: { n: 1 }\n`);
    const d = only((await check(text)).diagnostics, 'UNKNOWN_NODE_TYPE');
    expect([d.line, d.col]).toEqual([at(text, 'cuont').line, at(text, 'cuont').col]);
    expect(d.suggestion).toBe('did you mean `count`?');
  });

  it('UNKNOWN_NODE_TYPE for a plugin namespace that is not loaded', async () => {
    const text = graphYaml(`  src:\n    type: nothere/count\n`);
    const d = only((await check(text)).diagnostics, 'UNKNOWN_NODE_TYPE');
    expect(d.suggestion).toContain('plugin `nothere` is not loaded');
  });

  it('UNKNOWN_NODE_VERSION, and a warning for an unpinned type with several versions', async () => {
    const text = graphYaml(`  a:\n    type: count\n    version: 7\n    with: { n: 1 }\n  b:\n    type: count\n    with: { n: 1 }\n`);
    const { diagnostics } = await check(text);
    const v = only(diagnostics, 'UNKNOWN_NODE_VERSION');
    expect(v.line).toBe(at(text, 'version: 7').line);
    const w = only(diagnostics, 'UNPINNED_NODE_VERSION');
    expect(w.severity).toBe('warning');
    expect(w.line).toBe(at(text, 'type: count', 2).line);
  });

  it('an unpinned type with several versions still loads, at the latest version', async () => {
    const text = graphYaml(`  b:\n    type: count\n    with: { n: 1 }\n`);
    const { graph } = await check(text);
    expect(graph!.nodes[0].version).toBe(2);
  });

  it('UNKNOWN_CONFIG_KEY suggests the closest key; BAD_CONFIG_VALUE points at the value', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    with:\n      n: -4\n      strat: 2\n`);
    const { diagnostics } = await check(text);
    const key = only(diagnostics, 'UNKNOWN_CONFIG_KEY');
    expect([key.line, key.col]).toEqual([at(text, 'strat').line, at(text, 'strat').col]);
    expect(key.suggestion).toBe('did you mean `start`?');
    const bad = only(diagnostics, 'BAD_CONFIG_VALUE');
    expect([bad.line, bad.col]).toEqual([at(text, '-4').line, at(text, '-4').col]);
    expect(bad.message).toContain('`n`');
  });

  it('BAD_CONFIG_VALUE for a missing required config key points at the node', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n`);
    const d = only((await check(text)).diagnostics, 'BAD_CONFIG_VALUE');
    expect(d.message).toContain('`n`');
    expect(d.line).toBe(at(text, 'src:').line + 1);
  });

  it('UNKNOWN_PORT for an input and for an output, with suggestions', async () => {
    const text = graphYaml(
      `  src:\n    type: count\n    version: 1\n    with: { n: 1 }\n  sink:\n    type: slow-sink\n    in:\n      itmes: src.items\n  sink2:\n    type: slow-sink\n    in:\n      items: src.itemz\n`,
    );
    const found = (await check(text)).diagnostics.filter((d) => d.code === 'UNKNOWN_PORT');
    expect(found).toHaveLength(2);
    expect(found[0].line).toBe(at(text, 'itmes').line);
    expect(found[0].suggestion).toBe('did you mean `items`?');
    expect(found[1].line).toBe(at(text, 'src.itemz').line);
    expect(found[1].suggestion).toBe('did you mean `src.items`?');
  });

  it('UNKNOWN_NODE_REF and BAD_EDGE', async () => {
    const text = graphYaml(`  source:\n    type: count\n    version: 1\n    with: { n: 1 }\n  sink:\n    type: slow-sink\n    in: { items: sorce.items }\n  sink2:\n    type: slow-sink\n    in: { items: "not an edge" }\n`);
    const { diagnostics } = await check(text);
    const ref = only(diagnostics, 'UNKNOWN_NODE_REF');
    expect(ref.line).toBe(at(text, 'sorce.items').line);
    expect(ref.suggestion).toBe('did you mean `source`?');
    expect(only(diagnostics, 'BAD_EDGE').line).toBe(at(text, 'not an edge').line);
  });

  it('PORT_TYPE_MISMATCH names both types, on the edge line', async () => {
    const text = graphYaml(`  w:\n    type: words\n  n:\n    type: count\n    version: 1\n    with: { n: 1 }\n  sink:\n    type: slow-sink\n    in: { items: w.items }\n`);
    const d = only((await check(text)).diagnostics, 'PORT_TYPE_MISMATCH');
    expect([d.line, d.col]).toEqual([at(text, 'w.items').line, at(text, 'w.items').col]);
    expect(d.message).toContain('`texts`');
    expect(d.message).toContain('`numbers`');
    expect(d.suggestion).toBe('`n.items` has a matching type');
  });

  it('PORT_TYPE_MISMATCH between port kinds (a stream into a resource input)', async () => {
    const text = graphYaml(`  n:\n    type: count\n    version: 1\n    with: { n: 1 }\n  s:\n    type: scale\n    in: { model: n.items, items: n.items }\n`);
    const d = only((await check(text)).diagnostics, 'PORT_TYPE_MISMATCH');
    expect(d.message).toContain('resource');
  });

  it('MISSING_INPUT for a required input, not for an optional one', async () => {
    const text = graphYaml(`  sink:\n    type: slow-sink\n  gen:\n    type: generator\n    in: { items: other.items }\n  other:\n    type: count\n    version: 1\n    with: { n: 1 }\n`);
    const d = only((await check(text)).diagnostics, 'MISSING_INPUT');
    expect(d.line).toBe(at(text, 'sink:').line);
    expect(d.message).toContain('`items`');
  });

  it('TOO_MANY_EDGES into a single input; a multiple input takes a list', async () => {
    const text = graphYaml(
      `  a:\n    type: count\n    version: 1\n    with: { n: 1 }\n  b:\n    type: count\n    version: 1\n    with: { n: 1 }\n  m:\n    type: merge\n    in: { items: [a.items, b.items] }\n  sink:\n    type: slow-sink\n    in:\n      items: [m.items, a.items]\n`,
    );
    const d = only((await check(text)).diagnostics, 'TOO_MANY_EDGES');
    expect(d.line).toBe(at(text, '[m.items').line);
  });

  it('GRAPH_CYCLE names the nodes; a feedback cycle is legal', async () => {
    const illegal = graphYaml(`  a:\n    type: double\n    in: { items: b.items }\n  b:\n    type: double\n    in: { items: a.items }\n`);
    const d = only((await check(illegal)).diagnostics, 'GRAPH_CYCLE');
    expect(d.details!.nodes).toEqual(['a', 'b']);
    expect(d.message).toContain('cycle `a` → `b` → `a`');
    expect(d.line).toBeGreaterThan(0);

    const legal = graphYaml(
      `  src:\n    type: count\n    version: 1\n    with: { n: 4 }\n  gen:\n    type: generator\n    in: { items: src.items, policy: train.policy }\n  train:\n    type: trainer\n    in: { items: gen.items }\n`,
    );
    const ok = await check(legal);
    expect(ok.diagnostics).toEqual([]);
    expect(ok.graph!.nodes.map((n) => n.id)).toEqual(['src', 'gen', 'train']);
    expect(ok.graph!.edges.find((e) => e.to.port === 'policy')!.feedback).toBe(true);
  });

  it('GRAPH_CYCLE lists a longer cycle in path order', async () => {
    const text = graphYaml(`  a:\n    type: double\n    in: { items: c.items }\n  b:\n    type: double\n    in: { items: a.items }\n  c:\n    type: double\n    in: { items: b.items }\n`);
    const d = only((await check(text)).diagnostics, 'GRAPH_CYCLE');
    expect(d.details!.nodes).toEqual(['a', 'b', 'c']);
    const reversed = graphYaml(`  a:\n    type: double\n    in: { items: b.items }\n  b:\n    type: double\n    in: { items: c.items }\n  c:\n    type: double\n    in: { items: a.items }\n`);
    expect(only((await check(reversed)).diagnostics, 'GRAPH_CYCLE').message).toContain('cycle `a` → `c` → `b` → `a`');
  });

  it('GRAPH_CYCLE through a latest edge into a non-feedback input', async () => {
    const text = graphYaml(
      `  src:\n    type: count\n    version: 1\n    with: { n: 4 }\n  echo:\n    type: echo-latest\n    in: { items: src.items, policy: train.policy }\n  train:\n    type: trainer\n    in: { items: echo.items }\n`,
    );
    const d = only((await check(text)).diagnostics, 'GRAPH_CYCLE');
    expect(d.details!.nodes).toEqual(['echo', 'train']);
    expect(d.suggestion).toContain('echo.policy');
  });

  it('an edge from a node whose type is unknown is not reported a second time', async () => {
    const text = graphYaml(`  src:\n    type: cuont\n  sink:\n    type: slow-sink\n    in: { items: src.items }\n`);
    expect((await check(text)).diagnostics.map((d) => d.code)).toEqual(['UNKNOWN_NODE_TYPE']);
  });

  it('collects every error of a graph in one pass', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    with: { n: 1, strat: 0 }\n  bad:\n    type: nope\n  sink:\n    type: slow-sink\n    in: { items: src.itmes }\n`);
    const codes = (await check(text)).diagnostics.map((d) => d.code).sort();
    expect(codes).toEqual(['UNKNOWN_CONFIG_KEY', 'UNKNOWN_NODE_TYPE', 'UNKNOWN_PORT']);
  });

  it('buffer sizes: per edge, node default, global default', async () => {
    const text = graphYaml(
      `  a:\n    type: count\n    version: 1\n    with: { n: 1 }\n  m:\n    type: merge\n    buffer: 5\n    in: { items: [a.items, { from: a.items, buffer: 9 }] }\n  sink:\n    type: slow-sink\n    in: { items: m.items }\n`,
    );
    const { graph } = await check(text);
    expect(graph!.edges.map((e) => e.buffer)).toEqual([5, 9, 2]);
  });
});
