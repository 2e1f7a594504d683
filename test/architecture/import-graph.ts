// The project's import graph, read from the sources as text (no compiler run): which module imports
// which, and whether only its types (erased at run time). For the layering test.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { stronglyConnected } from '../../core/graph/strongly-connected.js';

export interface ImportEdge {
  /** Repository-relative path of the imported module, or the package name for a bare specifier. */
  target: string;
  /** Only types are imported (`import type`, or every specifier `type`): nothing at run time. */
  typeOnly: boolean;
  line: number;
}

export const SOURCE_DIRS = ['core', 'nodes', 'engines', 'plugins', 'bench'];
const EXTENSIONS = ['.ts', '.tsx', '.mts', '.mjs'];

export function sourceFiles(root: string, dirs = SOURCE_DIRS): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules') continue;
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (EXTENSIONS.some((e) => name.endsWith(e)) && !name.endsWith('.d.ts')) out.push(path.relative(root, full));
    }
  };
  for (const dir of dirs) if (existsSync(path.join(root, dir))) walk(path.join(root, dir));
  return out.sort();
}

const STATEMENT = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|(?:^|[^.\w])import\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

/** A module's imports. */
export function importsOf(root: string, file: string): ImportEdge[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const edges: ImportEdge[] = [];
  for (const match of text.matchAll(STATEMENT)) {
    const specifier = match[4] ?? match[5] ?? match[6];
    const clause = match[3] ?? '';
    const braces = /^\{([^}]*)\}$/.exec(clause.trim());
    const typeOnly =
      match[2] !== undefined ||
      (braces !== null && braces[1].split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type ')));
    const line = text.slice(0, match.index).split('\n').length + (text[match.index] === '\n' ? 1 : 0);
    edges.push({ target: resolveSpecifier(root, file, specifier), typeOnly, line });
  }
  return edges;
}

function resolveSpecifier(root: string, from: string, specifier: string): string {
  if (!specifier.startsWith('.')) return specifier.startsWith('node:') ? specifier : packageName(specifier);
  const base = path.join(path.dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, path.join(base, 'index.ts')];
  const found = candidates.find((c) => existsSync(path.join(root, c)) && statSync(path.join(root, c)).isFile());
  return path.normalize(found ?? base);
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export type ImportGraph = Map<string, ImportEdge[]>;

export function importGraph(root: string, dirs = SOURCE_DIRS): ImportGraph {
  return new Map(sourceFiles(root, dirs).map((file) => [file, importsOf(root, file)]));
}

/** Every module `file` reaches through run-time imports (type-only imports left out unless `types`), with one path to each. */
export function reachable(graph: ImportGraph, file: string, options: { types?: boolean } = {}): Map<string, string[]> {
  const paths = new Map<string, string[]>([[file, [file]]]);
  const queue = [file];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const edge of graph.get(current) ?? []) {
      if ((edge.typeOnly && !options.types) || paths.has(edge.target)) continue;
      paths.set(edge.target, [...paths.get(current)!, edge.target]);
      if (graph.has(edge.target)) queue.push(edge.target);
    }
  }
  return paths;
}

/** Import cycles among the graph's modules (type-only imports included: a cycle of types still ties the modules together). */
export function cycles(graph: ImportGraph): string[][] {
  const successors = (v: string) => (graph.get(v) ?? []).map((e) => e.target).filter((target) => graph.has(target));
  return stronglyConnected(graph.keys(), successors)
    .filter((component) => component.length > 1)
    .map((component) => component.sort());
}
