// `--set a.b=c` (sets `params.a.b`) and `--set nodes.ID.with.key=value` (sets a node's config
// directly). Values are read as YAML scalars or flow collections (`3`, `true`, `[1, 2]`, `"text"`).
import type { Diagnostic } from './diagnostics.js';
import { scalarFromText } from './interpolate.js';
import type { SourceMap } from './source.js';
import { didYouMean } from './suggest.js';

export interface Override {
  /** The original `a.b=c` text, used as the "file" of diagnostics about it. */
  text: string;
  path: string[];
  value: unknown;
}

export function parseOverride(text: string): Override | Diagnostic {
  const eq = text.indexOf('=');
  const key = eq > 0 ? text.slice(0, eq).trim() : '';
  if (eq <= 0 || key === '' || key.split('.').some((p) => p === '')) {
    return {
      code: 'BAD_SET',
      severity: 'error',
      file: `--set ${text}`,
      line: 0,
      col: 0,
      message: `\`--set ${text}\` must look like \`a.b=value\` or \`nodes.ID.with.key=value\``,
    };
  }
  const segments = key.split('.');
  const path = segments[0] === 'nodes' ? segments : segments[0] === 'params' ? segments : ['params', ...segments];
  return { text, path, value: scalarFromText(text.slice(eq + 1)) };
}

/**
 * Applies overrides to the raw graph value (before interpolation, so an override of a param reaches
 * every `${params.*}` that uses it). A param must already exist (a typo would otherwise be silently
 * ignored); under `nodes.ID` the node must exist, and config keys are checked later by its schema.
 */
export function applyOverrides(root: unknown, overrides: Override[], map: SourceMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  if (root === null || typeof root !== 'object') return diagnostics;
  for (const o of overrides) {
    const file = `--set ${o.text}`;
    let cur = root as Record<string, unknown>;
    let ok = true;
    for (let i = 0; i < o.path.length - 1; i++) {
      const seg = o.path[i];
      let next = cur[seg];
      const mustExist = o.path[0] === 'params' ? true : i <= 1; // `nodes` and the node id must exist
      if (next === undefined && !mustExist) {
        next = {};
        cur[seg] = next;
      }
      if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        const code = o.path[0] === 'nodes' ? 'UNKNOWN_NODE_REF' : 'UNKNOWN_PARAM';
        diagnostics.push({
          code,
          severity: 'error',
          file,
          line: 0,
          col: 0,
          message: `\`${o.path.slice(0, i + 1).join('.')}\` ${next === undefined ? 'does not exist' : 'is not a mapping'} in the graph`,
          suggestion: next === undefined ? didYouMean(seg, Object.keys(cur)) : undefined,
        });
        ok = false;
        break;
      }
      cur = next as Record<string, unknown>;
    }
    if (!ok) continue;
    const last = o.path[o.path.length - 1];
    if (o.path[0] === 'params' && !(last in cur)) {
      diagnostics.push({
        code: 'UNKNOWN_PARAM',
        severity: 'error',
        file,
        line: 0,
        col: 0,
        message: `unknown param \`${o.path.slice(1).join('.')}\`; \`--set\` can only change params the graph declares`,
        suggestion: didYouMean(last, Object.keys(cur)),
      });
      continue;
    }
    cur[last] = o.value;
    map.setValue(o.path, { file, line: 0, col: 0 });
  }
  return diagnostics;
}
