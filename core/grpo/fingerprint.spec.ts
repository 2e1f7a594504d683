import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ResolvedGraph } from '../graph/resolved.js';
import { fingerprintMismatch, runFingerprint } from './fingerprint.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'grpo-fingerprint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function graph(nodes: { id: string; type: string; config: unknown }[]): ResolvedGraph {
  return {
    file: path.join(root, 'g.yaml'),
    baseDir: root,
    name: 'g',
    backend: 'cpu',
    seed: 0,
    params: {},
    nodes: nodes.map((n) => ({ ...n, version: 1, node: undefined as never, inputs: {} })),
    edges: [],
    registry: undefined as never,
  };
}

describe('run fingerprint', () => {
  writeFileSync(path.join(root, 'train.jsonl'), '{"q":"1+1","a":"2"}\n');
  const base = [
    { id: 'base', type: 'model.load', config: { path: 'models/x' } },
    { id: 'data', type: 'dataset.load', config: { path: 'train.jsonl' } },
    { id: 'train', type: 'train.grpo', config: { max_steps: 10, learning_rate: 1e-5, save_steps: 5 } },
  ];

  it('is stable, ignores how long/how often settings, and names what differs', () => {
    const a = runFingerprint(graph(base));
    expect(runFingerprint(graph(base))).toEqual(a);
    const longer = runFingerprint(graph(base.map((n) => (n.id === 'train' ? { ...n, config: { max_steps: 40, learning_rate: 1e-5, save_steps: 2 } } : n))));
    expect(fingerprintMismatch(a, longer)).toBeUndefined();

    const otherLr = runFingerprint(graph(base.map((n) => (n.id === 'train' ? { ...n, config: { max_steps: 10, learning_rate: 1e-4 } } : n))));
    expect(fingerprintMismatch(a, otherLr)).toBe('it was trained with a different graph (changed: train.learning_rate)');

    const otherModel = runFingerprint(graph(base.map((n) => (n.id === 'base' ? { ...n, config: { path: 'models/y' } } : n))));
    expect(fingerprintMismatch(a, otherModel)).toBe('it was trained with a different model (changed: base.path)');
  });

  it('a dataset file with other content (same name, same shapes) is a different dataset', () => {
    const a = runFingerprint(graph(base));
    writeFileSync(path.join(root, 'train.jsonl'), '{"q":"2+2","a":"4"}\n');
    const b = runFingerprint(graph(base));
    expect(b.graph).toBe(a.graph);
    expect(b.model).toBe(a.model);
    expect(fingerprintMismatch(a, b)).toBe("it was trained with a different dataset (changed: data's files)");
  });

  it('a field only one side has (a setting added with its default by a newer grpoflow) is not a difference', () => {
    const a = runFingerprint(graph(base));
    const withNewField = runFingerprint(graph(base.map((n) => (n.id === 'train' ? { ...n, config: { ...n.config, new_setting: false } } : n))));
    expect(withNewField.graph).not.toBe(a.graph);
    expect(fingerprintMismatch(a, withNewField)).toBeUndefined();
    const removed = runFingerprint(graph(base.filter((n) => n.id !== 'data')));
    expect(fingerprintMismatch(a, removed)).toBe('it was trained with a different dataset (changed: data removed)');
  });

  it('a checkpoint without a fingerprint is not judged', () => {
    expect(fingerprintMismatch(undefined, runFingerprint(graph(base)))).toBeUndefined();
  });
});
