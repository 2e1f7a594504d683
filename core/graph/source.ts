// Reads a YAML graph file into plain JS while remembering where every value and key was written.
//
// Anchors, aliases and merge keys (`<<: *base`) are resolved here, before validation. Positions through
// an alias: the value at the alias's own path points at the alias's use (`*base`); values *inside* the
// aliased structure point at the anchor's definition, where they are actually written, since that is
// where a user has to edit them.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic, SourcePos } from './diagnostics.js';

export type PathSegment = string | number;

function pathKey(path: readonly PathSegment[]): string {
  return path.map(String).join('\u0000');
}

/** Source positions of values and keys, by path into the parsed value. */
export class SourceMap {
  private readonly values = new Map<string, SourcePos>();
  private readonly keys = new Map<string, SourcePos>();

  constructor(readonly file: string) {}

  setValue(path: readonly PathSegment[], pos: SourcePos): void {
    this.values.set(pathKey(path), pos);
  }
  setKey(path: readonly PathSegment[], pos: SourcePos): void {
    this.keys.set(pathKey(path), pos);
  }

  /** Where the value at `path` was written; falls back to the nearest enclosing value that has a position. */
  value(path: readonly PathSegment[]): SourcePos {
    for (let n = path.length; n >= 0; n--) {
      const pos = this.values.get(pathKey(path.slice(0, n)));
      if (pos) return pos;
    }
    return { file: this.file, line: 0, col: 0 };
  }

  /** Where the key of `path` was written (for "unknown key" errors); falls back to the value. */
  key(path: readonly PathSegment[]): SourcePos {
    return this.keys.get(pathKey(path)) ?? this.value(path);
  }
}

export interface ParsedSource {
  value: unknown;
  map: SourceMap;
  diagnostics: Diagnostic[];
}

export function parseYamlSource(text: string, file: string): ParsedSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true });
  const map = new SourceMap(file);
  const diagnostics: Diagnostic[] = [];
  // Only the first syntax error: the parser's later ones mostly follow from it (one bad indent gave 57).
  const [error] = doc.errors;
  if (error) {
    const start = lineCounter.linePos(error.pos[0]);
    const more = doc.errors.length - 1;
    diagnostics.push({
      code: 'YAML_SYNTAX',
      severity: 'error',
      file,
      line: start.line,
      col: start.col,
      message: error.message.split('\n')[0] + (more > 0 ? ` (the parser reports ${more} more error${more === 1 ? '' : 's'} after it, most following from this one)` : ''),
      details: { yamlCode: error.code, more },
    });
  }
  if (diagnostics.length > 0) return { value: undefined, map, diagnostics };

  const posOf = (node: { range?: [number, number, number] | null } | null | undefined): SourcePos => {
    if (!node?.range) return { file, line: 0, col: 0 };
    const { line, col } = lineCounter.linePos(node.range[0]);
    return { file, line, col };
  };

  const toJs = (node: unknown, path: PathSegment[], seen: Set<Node>): unknown => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      map.setValue(path, posOf(node));
      const target = node.resolve(doc as Document);
      if (!target) return null;
      if (seen.has(target)) throw new Error(`${file}: recursive alias *${node.source}`);
      seen.add(target);
      const value = toJs(target, path, seen);
      seen.delete(target);
      // The alias's own path keeps the alias position (toJs above overwrote it with the anchor's).
      map.setValue(path, posOf(node));
      return value;
    }
    if (isScalar(node)) {
      map.setValue(path, posOf(node));
      return node.value;
    }
    if (isSeq(node)) {
      map.setValue(path, posOf(node));
      return node.items.map((item, i) => toJs(item, [...path, i], seen));
    }
    if (isMap(node)) {
      map.setValue(path, posOf(node));
      const out: Record<string, unknown> = {};
      const explicit = new Set<string>();
      const merges: unknown[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key;
        if (isScalar(keyNode) && keyNode.source === '<<') {
          merges.push(pair.value);
          continue;
        }
        const key = String(isScalar(keyNode) ? keyNode.value : keyNode);
        explicit.add(key);
        map.setKey([...path, key], posOf(keyNode as Node));
        out[key] = toJs(pair.value, [...path, key], seen);
      }
      // Merge keys: explicit keys win; earlier merge sources win over later ones (YAML 1.1 merge spec).
      for (const source of merges) {
        const sources = isSeq(source) ? source.items : [source];
        for (const item of sources) {
          const target = isAlias(item) ? item.resolve(doc as Document) : item;
          if (!isMap(target)) continue;
          for (const pair of target.items) {
            const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
            if (explicit.has(key) || key in out) continue;
            map.setKey([...path, key], posOf(pair.key as Node));
            out[key] = toJs(pair.value, [...path, key], seen);
          }
        }
      }
      return out;
    }
    return null;
  };

  const value = toJs(doc.contents, [], new Set());
  return { value, map, diagnostics };
}
