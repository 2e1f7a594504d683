// The layers, as rules on the import graph (read from the sources), so they stay true:
//   engines/NAME/  tensor code, one folder per engine (the only place a tensor library is imported);
//   core/          plain graph, runtime, RL and engine-boundary code: reaches no engine, not even for a
//                  type (core/cli, the composition root, may load an engine; core/graph loads the
//                  built-in engine plugin by path, as it loads any plugin);
//   nodes/         node types, one file each with its test beside it; they reach no engine, not even
//                  for a type: engines come from the registry through ctx.services (their specs, as
//                  tests, may build a model with an engine directly);
//   and no import cycles anywhere (type-only imports included: they tie modules together too).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cycles, importGraph, reachable } from './import-graph.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TENSOR_PACKAGES = [/^@tensorflow\//, /^webgpu$/];
const isTensorPackage = (target: string) => TENSOR_PACKAGES.some((p) => p.test(target));
const isTest = (file: string) => /\.(spec|test)\.tsx?$/.test(file);

const graph = importGraph(ROOT, ['core', 'nodes', 'engines', 'plugins']);

describe('layers', () => {
  it('a tensor library is imported only under engines/', () => {
    const offenders = [...graph].flatMap(([file, edges]) =>
      file.startsWith('engines/') || isTest(file) ? [] : edges.filter((e) => isTensorPackage(e.target)).map((e) => `${file}:${e.line} imports ${e.target}`),
    );
    expect(offenders).toEqual([]);
  });

  it('plain code (core/ but the CLI) and nodes/ reach no engine, through run-time or type imports', () => {
    const plain = [...graph.keys()].filter((f) => ((f.startsWith('core/') && !f.startsWith('core/cli/')) || f.startsWith('nodes/')) && !isTest(f));
    expect(plain.filter((f) => f.startsWith('core/')).length).toBeGreaterThan(50); // the scan sees the tree
    expect(plain.filter((f) => f.startsWith('nodes/')).length).toBeGreaterThan(20);
    const offenders = plain.flatMap((file) => {
      const hit = [...reachable(graph, file, { types: true })].find(([target]) => target.startsWith('engines/') || isTensorPackage(target));
      return hit ? [hit[1].join(' → ')] : [];
    });
    expect(offenders).toEqual([]);
  });

  it('the plain RL modules (advantages, loss spec, batch plan, schedules, rewards, checkpoints) and the engine interfaces exist where the rule above covers them', () => {
    for (const file of ['core/grpo/advantages.ts', 'core/grpo/loss-spec.ts', 'core/grpo/batch-plan.ts', 'core/grpo/schedule.ts', 'core/grpo/checkpoint.ts', 'core/grpo/rewards/score.ts', 'core/engine/interfaces.ts', 'core/engine/rows.ts']) {
      expect(graph.has(file), file).toBe(true);
    }
  });

  it('has no import cycles', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the scan finds what it should: a made-up tensor import and a cycle are caught', () => {
    const fake = new Map(graph);
    fake.set('core/fake-a.ts', [{ target: 'core/fake-b.ts', typeOnly: true, line: 1 }]);
    fake.set('core/fake-b.ts', [
      { target: 'core/fake-a.ts', typeOnly: false, line: 1 },
      { target: 'engines/tfjs/tf.ts', typeOnly: false, line: 2 },
    ]);
    expect(cycles(fake)).toContainEqual(['core/fake-a.ts', 'core/fake-b.ts']);
    expect([...reachable(fake, 'core/fake-b.ts').keys()]).toContain('@tensorflow/tfjs');
    expect([...reachable(fake, 'core/fake-a.ts').keys()]).toEqual(['core/fake-a.ts']); // type-only: nothing at run time
    expect([...reachable(fake, 'core/fake-a.ts', { types: true }).keys()]).toContain('engines/tfjs/tf.ts'); // but the rule above sees types too
  });
});

describe('node files', () => {
  const nodeFiles = [...graph.keys()].filter((f) => f.startsWith('nodes/') && !isTest(f) && readFileSync(path.join(ROOT, f), 'utf8').includes('defineNode('));

  it('one node type per file, named after its type, with its test beside it (versions: nodes/TYPE/vN.ts)', () => {
    expect(nodeFiles.length).toBeGreaterThan(15);
    for (const file of nodeFiles) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      const types = [...text.matchAll(/defineNode\(\{\s*type:\s*'([^']+)',\s*version:\s*(\d+)/g)];
      expect(types.length, `${file} defines one node type`).toBe(1);
      const [, type, version] = types[0];
      const name = type.replaceAll('.', '-');
      const expected = [`nodes/${name}.ts`, `nodes/${name}/v${version}.ts`];
      expect(expected, `${file} holds ${type} v${version}`).toContain(file);
      expect(existsSync(path.join(ROOT, file.replace(/\.ts$/, '.spec.ts'))), `${file} has its .spec.ts beside it`).toBe(true);
    }
  });

  it('the core plugin registers every node file', () => {
    const index = readFileSync(path.join(ROOT, 'nodes/index.ts'), 'utf8');
    for (const file of nodeFiles) expect(index, file).toContain(`'./${path.relative('nodes', file).replace(/\.ts$/, '.js')}'`);
    expect(readdirSync(path.join(ROOT, 'nodes')).length).toBeGreaterThan(0);
  });
});
