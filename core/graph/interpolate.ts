// `${params.x}` and `${env.NAME}` in graph files. A string that is exactly one reference takes the
// referenced value's own type (a number stays a number; an env var is read as a YAML scalar, so
// `lr: ${env.LR}` gives a number); references inside a longer string are spliced in as text.
// `${env.NAME:-fallback}` supplies a default; `$${` writes a literal `${`.
import { parse as parseYaml } from 'yaml';
import type { Diagnostic } from './diagnostics.js';
import type { PathSegment, SourceMap } from './source.js';
import { closest } from './suggest.js';

const REFERENCE = /\$?\$\{(params|env)\.([A-Za-z0-9_.-]+?)(?::-([^}]*))?\}/g;

export interface InterpolationScope {
  params: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** Whether `${params.*}` may be used here (not inside `params` itself). */
  allowParams: boolean;
}

function lookupParam(params: Record<string, unknown>, dotted: string): { found: boolean; value?: unknown; missingAt?: { parent: string[]; key: string; known: string[] } } {
  let cur: unknown = params;
  const parts = dotted.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (cur === null || typeof cur !== 'object' || !(parts[i] in (cur as object))) {
      const known = cur !== null && typeof cur === 'object' ? Object.keys(cur as object) : [];
      return { found: false, missingAt: { parent: parts.slice(0, i), key: parts[i], known } };
    }
    cur = (cur as Record<string, unknown>)[parts[i]];
  }
  return { found: true, value: cur };
}

export function scalarFromText(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

/** Replaces references in `value` (recursively), reporting unknown params and unset env vars. */
export function interpolate(
  value: unknown,
  path: PathSegment[],
  scope: InterpolationScope,
  map: SourceMap,
  diagnostics: Diagnostic[],
): unknown {
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, [...path, i], scope, map, diagnostics));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, [...path, k], scope, map, diagnostics);
    return out;
  }
  if (typeof value !== 'string' || !value.includes('${')) return value;

  const resolve = (source: string, name: string, fallback: string | undefined): { ok: boolean; value?: unknown } => {
    if (source === 'env') {
      const v = scope.env[name] ?? fallback;
      if (v === undefined) {
        diagnostics.push({
          code: 'UNKNOWN_ENV',
          severity: 'error',
          ...map.value(path),
          message: `environment variable \`${name}\` is not set (referenced as \`\${env.${name}}\`)`,
          suggestion: `set it, or give a default: \`\${env.${name}:-value}\``,
          details: { name },
        });
        return { ok: false };
      }
      return { ok: true, value: v };
    }
    if (!scope.allowParams) {
      diagnostics.push({
        code: 'UNKNOWN_PARAM',
        severity: 'error',
        ...map.value(path),
        message: `\`\${params.${name}}\` cannot be used inside \`params\` (only \`\${env.*}\` can)`,
        details: { name },
      });
      return { ok: false };
    }
    const hit = lookupParam(scope.params, name);
    if (!hit.found) {
      if (fallback !== undefined) return { ok: true, value: scalarFromText(fallback) };
      const missing = hit.missingAt!;
      const near = closest(missing.key, missing.known);
      diagnostics.push({
        code: 'UNKNOWN_PARAM',
        severity: 'error',
        ...map.value(path),
        message: `unknown param \`${name}\` (referenced as \`\${params.${name}}\`)`,
        suggestion: near ? `did you mean \`params.${[...missing.parent, near].join('.')}\`?` : undefined,
        details: { name, known: missing.known },
      });
      return { ok: false };
    }
    return { ok: true, value: hit.value };
  };

  // A string that is exactly one reference keeps the value's type.
  const whole = /^\$\{(params|env)\.([A-Za-z0-9_.-]+?)(?::-([^}]*))?\}$/.exec(value);
  if (whole) {
    const r = resolve(whole[1], whole[2], whole[3]);
    if (!r.ok) return value;
    return whole[1] === 'env' ? scalarFromText(String(r.value)) : r.value;
  }
  return value.replace(REFERENCE, (match, source: string, name: string, fallback: string | undefined) => {
    if (match.startsWith('$$')) return match.slice(1);
    const r = resolve(source, name, fallback);
    if (!r.ok) return match;
    return typeof r.value === 'object' ? JSON.stringify(r.value) : String(r.value);
  });
}
