// The shipped graph.schema.json: current (what `grpoflow schema --out` writes now), pointed at by every
// shipped graph's `$schema` comment, and each shipped graph validates against it. The validator is
// zod's JSON Schema reader (z.fromJSONSchema); it does not take `if`/`then`, so the per-node-type rule
// is picked here the way the `if` says (type, and version or the latest) and checked with `then`.
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { schema as schemaCommand } from '../../core/cli/commands/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SHIPPED = path.join(ROOT, 'graph.schema.json');
const GRAPHS = readdirSync(path.join(ROOT, 'graphs'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => path.join(ROOT, 'graphs', f));

type Schema = Record<string, any>;
const shipped = JSON.parse(readFileSync(SHIPPED, 'utf8')) as Schema;

/** Problems of a parsed graph file against the graph schema, as `where: message` lines. */
function check(schema: Schema, doc: Schema): string[] {
  const problems: string[] = [];
  const copy = structuredClone(schema);
  const rules = copy.properties.nodes.additionalProperties.allOf as { if: Schema; then: Schema }[];
  delete copy.properties.nodes.additionalProperties.allOf;
  const report = (where: string, result: { success: boolean; error?: z.ZodError }) => {
    if (!result.success) for (const issue of result.error!.issues) problems.push(`${where}${issue.path.map((p) => `.${String(p)}`).join('')}: ${issue.message}`);
  };
  report('file', z.fromJSONSchema(copy).safeParse(doc));
  const versions = new Map<string, number[]>();
  for (const rule of rules) versions.set(rule.if.properties.type.const, [...(versions.get(rule.if.properties.type.const) ?? []), rule.if.properties.version?.const ?? Infinity]);
  for (const [id, node] of Object.entries((doc.nodes ?? {}) as Record<string, Schema>)) {
    const rule = rules.find((r) => {
      if (r.if.properties.type.const !== node.type) return false;
      const pinned = r.if.properties.version?.const;
      if (pinned !== undefined) return node.version === pinned;
      // The latest: also when unpinned (its `if` has anyOf [no version, version = latest]).
      const latest = r.if.anyOf[1].properties.version.const;
      return node.version === undefined || node.version === latest;
    });
    if (!rule) {
      problems.push(`nodes.${id}: no rule for type ${node.type}`);
      continue;
    }
    report(`nodes.${id}`, z.fromJSONSchema({ type: 'object', ...rule.then, $defs: schema.$defs }).safeParse(node));
  }
  return problems;
}

const out = mkdtempSync(path.join(os.tmpdir(), 'schema-file-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('graph.schema.json', () => {
  it('is what `grpoflow schema --out` writes now (regenerate it when nodes or their configs change)', async () => {
    const file = path.join(out, 'graph.schema.json');
    expect(await schemaCommand.run(['--out', file])).toBe(0);
    expect(readFileSync(SHIPPED, 'utf8'), 'graph.schema.json is stale: run `node bin/grpoflow.js schema --out graph.schema.json`').toBe(readFileSync(file, 'utf8'));
  });

  it.each(GRAPHS.map((g) => [path.relative(ROOT, g), g]))('%s points at it and validates against it', (_, file) => {
    const text = readFileSync(file, 'utf8');
    const pointer = /^# yaml-language-server: \$schema=(\S+)/.exec(text.split('\n')[0]);
    expect(pointer, 'first line names the schema').not.toBeNull();
    const target = path.resolve(path.dirname(file), pointer![1]);
    expect(target).toBe(SHIPPED);
    expect(existsSync(target)).toBe(true);
    expect(check(shipped, parseYaml(text, { merge: true }))).toEqual([]);
  });

  it('typed fields take a `${...}` reference but not other strings; `in:` takes the node type\'s ports only', () => {
    const graph = (train: Schema) => ({
      apiVersion: 'grpoflow/v1',
      kind: 'Graph',
      metadata: { name: 'x' },
      nodes: { train: { type: 'train.grpo', in: { model: 'lora.model', batches: 'adv.batches' }, ...train } },
    });
    const good = { with: { max_steps: '${params.steps}', learning_rate: 1e-5, lr_scheduler_type: '${params.schedule}', beta: '${env.BETA}' } };
    expect(check(shipped, graph(good))).toEqual([]);
    expect(check(shipped, graph({ with: { max_steps: 'ten' } }))).toEqual([expect.stringMatching(/^nodes\.train\.with/)]);
    expect(check(shipped, graph({ with: { max_steps: 10, lr_scheduler_type: 'cosine-ish' } }))).toEqual([expect.stringMatching(/^nodes\.train\.with/)]);
    expect(check(shipped, graph({ with: { max_steps: '${params.steps} and more' } }))).toEqual([expect.stringMatching(/^nodes\.train\.with/)]);
    expect(check(shipped, graph({ with: { max_steps: 10 }, in: { modle: 'lora.model' } }))).toEqual([expect.stringMatching(/^nodes\.train\.in/)]);
    expect(check(shipped, { ...graph({ with: { max_steps: 10 } }), backend: 'gpu' })).toEqual([expect.stringMatching(/^file\.backend/)]);
    // Port names are listed for completion, with their kind and type.
    const rule = shipped.properties.nodes.additionalProperties.allOf.find((r: Schema) => r.if.properties.type.const === 'rollout.generate');
    expect(Object.keys(rule.then.properties.in.properties)).toEqual(['model', 'tokenizer', 'template', 'prompts', 'policy']);
    expect(rule.then.properties.in.properties.policy.description).toMatch(/^policy: latest policy \(optional, feedback\)/);
  });
});
