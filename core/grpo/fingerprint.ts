// What a checkpoint was trained with: a fingerprint of the graph, the model and the dataset, recorded in
// every checkpoint (trainer_state.json, `extra.fingerprint`) and compared on `--resume`, so that a
// checkpoint from another graph or dataset with the same tensor shapes does not resume silently.
//
// - model: the configs of the `model.*` nodes, and the files they point at;
// - dataset: the configs of the `dataset.*` nodes, and the files they point at;
// - graph: every other node's type, version and config, and the edges. Settings that only say how long
//   or how often (max_steps, save_steps, save_total_limit, logging_steps) are left out: extending a run
//   or checkpointing it more often is what resuming is for.
// Files are digested by size and content; a file over 2 MiB by its size, first and last MiB (model
// weights can be gigabytes, and a different checkpoint differs in both ends).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResolvedGraph } from '../graph/resolved.js';

export type FingerprintPart = 'graph' | 'model' | 'dataset';

export interface NodeFingerprint {
  part: FingerprintPart;
  type: string;
  /** Digest per config field: a field only one side has (a setting a newer grpoflow added, with its default) is not a difference. */
  fields: Record<string, string>;
  /** Digest of the files the config names (model and dataset nodes). */
  files: string;
}

export interface RunFingerprint {
  graph: string;
  model: string;
  dataset: string;
  /** Digest of the edges. */
  edges: string;
  /** Per node id, so a mismatch can name the nodes and fields that changed. */
  nodes: Record<string, NodeFingerprint>;
}

const NOT_IDENTITY = new Set(['max_steps', 'save_steps', 'save_total_limit', 'logging_steps']);
const MIB = 1 << 20;

function sha(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function fileDigest(file: string): string {
  const { size } = statSync(file);
  const hash = createHash('sha256').update(String(size));
  const fd = openSync(file, 'r');
  try {
    const read = (position: number, length: number) => {
      const buffer = Buffer.alloc(length);
      const n = readSync(fd, buffer, 0, length, position);
      hash.update(buffer.subarray(0, n));
    };
    if (size <= 2 * MIB) read(0, size);
    else {
      read(0, MIB);
      read(size - MIB, MIB);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex').slice(0, 16);
}

/** A file's digest, or a folder's (its files, one level deep, by name); undefined when the path is neither. */
export function pathDigest(target: string): string | undefined {
  let stat;
  try {
    stat = statSync(target);
  } catch {
    return undefined;
  }
  if (stat.isFile()) return fileDigest(target);
  if (!stat.isDirectory()) return undefined;
  const parts = readdirSync(target)
    .sort()
    .filter((name) => !name.startsWith('.'))
    .map((name) => {
      const full = join(target, name);
      return statSync(full).isFile() ? `${name}:${fileDigest(full)}` : '';
    });
  return sha(parts.join('\n'));
}

function partOf(type: string): FingerprintPart {
  if (type.startsWith('model.')) return 'model';
  if (type.startsWith('dataset.')) return 'dataset';
  return 'graph';
}

/** Strings in a config that name an existing file or folder (relative to the graph's folder), with their digests. */
function referencedFiles(config: unknown, baseDir: string, out: string[] = []): string[] {
  if (typeof config === 'string') {
    const full = resolve(baseDir, config);
    if (config.length > 0 && config.length < 4096 && existsSync(full)) out.push(`${config}=${pathDigest(full) ?? ''}`);
  } else if (Array.isArray(config)) for (const item of config) referencedFiles(item, baseDir, out);
  else if (config && typeof config === 'object') for (const value of Object.values(config)) referencedFiles(value, baseDir, out);
  return out;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function runFingerprint(graph: ResolvedGraph): RunFingerprint {
  const nodes: RunFingerprint['nodes'] = {};
  for (const node of graph.nodes) {
    const part = partOf(node.type);
    const config = node.config && typeof node.config === 'object' ? (node.config as Record<string, unknown>) : { value: node.config };
    const fields = Object.fromEntries(
      Object.entries(config)
        .filter(([key, value]) => !NOT_IDENTITY.has(key) && value !== undefined)
        .map(([key, value]) => [key, sha(stableJson(value))]),
    );
    const files = part === 'graph' ? '' : sha(referencedFiles(node.config, graph.baseDir).join('\n'));
    nodes[node.id] = { part, type: `${node.type}@${node.version}`, fields, files };
  }
  const partDigest = (part: FingerprintPart, extra = '') =>
    sha(
      Object.entries(nodes)
        .filter(([, n]) => n.part === part)
        .map(([id, n]) => `${id}:${stableJson(n)}`)
        .sort()
        .join('\n') + extra,
    );
  const edges = sha(graph.edges.map((e) => `${e.from.node}.${e.from.port}->${e.to.node}.${e.to.port}[${e.index}]`).sort().join('\n'));
  return { graph: partDigest('graph', edges), model: partDigest('model'), dataset: partDigest('dataset'), edges, nodes };
}

/** What differs in one node: its type, the fields both sides have, the files it names. */
function nodeChanges(id: string, before: NodeFingerprint, now: NodeFingerprint): string[] {
  if (before.type !== now.type) return [`${id} (${before.type} -> ${now.type})`];
  const changed = Object.keys(now.fields).filter((key) => key in (before.fields ?? {}) && before.fields[key] !== now.fields[key]).map((key) => `${id}.${key}`);
  if (before.files !== now.files) changed.push(`${id}'s files`);
  return changed;
}

/**
 * Compares the fingerprint a checkpoint recorded with this run's. Returns undefined when they agree, or
 * one sentence naming what differs (the parts; the fields and files that changed; nodes added or removed;
 * the edges). Node by node rather than by the part digests, so a field that only one side has does not count.
 */
export function fingerprintMismatch(recorded: unknown, current: RunFingerprint): string | undefined {
  if (!recorded || typeof recorded !== 'object') return undefined;
  const saved = recorded as Partial<RunFingerprint>;
  if ((['model', 'dataset', 'graph'] as const).every((p) => saved[p] === current[p])) return undefined;
  const before = saved.nodes ?? {};
  const changes: Record<FingerprintPart, string[]> = { model: [], dataset: [], graph: [] };
  for (const [id, now] of Object.entries(current.nodes)) {
    if (!before[id]) changes[now.part].push(`${id} added`);
    else changes[now.part].push(...nodeChanges(id, before[id], now));
  }
  for (const [id, old] of Object.entries(before)) if (!current.nodes[id]) changes[old.part ?? 'graph'].push(`${id} removed`);
  if (saved.edges !== current.edges) changes.graph.push('the edges');
  const parts = (['model', 'dataset', 'graph'] as const).filter((p) => changes[p].length > 0);
  if (parts.length === 0) return undefined;
  return `it was trained with a different ${parts.join(' and ')} (changed: ${parts.flatMap((p) => changes[p]).join(', ')})`;
}
