// Turns zod issues into diagnostics that point at the offending line, with a suggestion for unknown keys.
import type { z } from 'zod';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import type { PathSegment, SourceMap } from './source.js';
import { didYouMean } from './suggest.js';

/** Wrapper schema kinds whose inner schema describes the same value. */
const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional']);

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  in?: z.ZodType;
}

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let def = defOf(s); ; def = defOf(s)) {
    if (WRAPPERS.has(def.type) && def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

/** The keys an object schema at `path` accepts (for "did you mean"); empty when unknown. */
export function knownKeysAt(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let s: z.ZodType | undefined = unwrap(schema);
  for (const segment of path) {
    if (!s) return [];
    const def = defOf(s);
    if (def.type === 'object' && def.shape) s = def.shape[String(segment)];
    else if (def.type === 'array' && def.element) s = def.element;
    else if (def.type === 'record' && def.valueType) s = def.valueType;
    else return [];
    s = s ? unwrap(s) : undefined;
  }
  if (!s) return [];
  const def = defOf(s);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

export interface IssueContext {
  schema: z.ZodType;
  /** Where the validated value sits in the graph file (`['nodes', 'reward', 'with']`). */
  basePath: PathSegment[];
  map: SourceMap;
  /** What is being validated, for messages ("node `reward` config"). */
  subject: string;
  unknownKeyCode: DiagnosticCode;
  badValueCode: DiagnosticCode;
}

export function zodIssuesToDiagnostics(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of issues) {
    const rel = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(ctx.schema, rel);
      for (const key of issue.keys) {
        const path = [...ctx.basePath, ...rel, key];
        out.push({
          code: ctx.unknownKeyCode,
          severity: 'error',
          ...ctx.map.key(path),
          message: `unknown key \`${[...rel, key].join('.')}\` in ${ctx.subject}`,
          suggestion: didYouMean(key, known),
          details: { key, path: [...rel, key], known },
        });
      }
      continue;
    }
    const path = [...ctx.basePath, ...rel];
    const where = rel.length > 0 ? `\`${rel.join('.')}\`` : 'value';
    out.push({
      code: ctx.badValueCode,
      severity: 'error',
      ...ctx.map.value(path),
      message: `bad ${where} in ${ctx.subject}: ${issue.message}`,
      details: { path: rel, zodCode: issue.code },
    });
  }
  return out;
}
