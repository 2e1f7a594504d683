// Declarative row → prompt mapping. A mapping names the chat messages as templates over the row's fields
// (`"${question}"`, `"Solve: ${problem.text}"`) and the answer fields to keep, each copied from a row field
// and optionally cut out with a regex. The GSM8K mapping:
//   system: "You are given a problem. ..."
//   user: "${question}"
//   fields: { answer: { from: answer, regex: "####\\s*(.*)$" } }
// In a graph file, `${params.x}` and `${env.X}` are the engine's own interpolation; a row field named
// `params` or `env` must be written `$${params.x}` there.
import { z } from 'zod';
import type { ChatMessage, DatasetRow, PromptRecord } from '../ports.js';
import { DatasetError } from './errors.js';

const fieldSpec = z.union([
  z.string().describe('The row field to copy (dotted path allowed).'),
  z.strictObject({
    from: z.string().describe('The row field to read (dotted path allowed).'),
    regex: z.string().optional().describe('Keep the first capture group (or the whole match) of this regex; multi-line mode.'),
    trim: z.boolean().default(true),
    type: z.enum(['string', 'number']).default('string'),
  }),
]);

export const mappingSchema = z.strictObject({
  system: z.string().optional().describe('System message template; `${field}` inserts a row field.'),
  user: z.string().optional().describe('User message template.'),
  messages: z
    .union([
      z.string().describe('A row field that already holds [{role, content}, ...].'),
      z.array(z.strictObject({ role: z.string(), content: z.string() })).describe('Message templates.'),
    ])
    .optional(),
  id: z.string().optional().describe('Template for the record id. Default: the row index.'),
  fields: z.record(z.string(), fieldSpec).default({}).describe('Fields handed to reward functions.'),
});
export type MappingSpec = z.input<typeof mappingSchema>;

export type RowMapper = (row: DatasetRow) => PromptRecord;

/** Compile a mapping spec (validated here too, so bad specs fail before any row is read). */
export function compileMapping(spec: MappingSpec): RowMapper {
  const mapping = mappingSchema.parse(spec);
  if (mapping.messages !== undefined && (mapping.system !== undefined || mapping.user !== undefined)) {
    throw new Error('mapping: give either "messages" or "system"/"user", not both');
  }
  if (mapping.messages === undefined && mapping.user === undefined) {
    throw new Error('mapping: needs "user" (a template such as "${question}") or "messages"');
  }
  const fieldRegexes = Object.fromEntries(
    Object.entries(mapping.fields).map(([name, spec]) => [name, typeof spec === 'string' ? undefined : compileRegex(name, spec.regex)]),
  );
  return (row) => {
    const messages: ChatMessage[] = [];
    if (typeof mapping.messages === 'string') {
      messages.push(...messagesFromField(row, mapping.messages));
    } else if (Array.isArray(mapping.messages)) {
      for (const m of mapping.messages) messages.push({ role: m.role, content: fillTemplate(m.content, row) });
    } else {
      if (mapping.system !== undefined) messages.push({ role: 'system', content: fillTemplate(mapping.system, row) });
      messages.push({ role: 'user', content: fillTemplate(mapping.user!, row) });
    }
    const fields: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(mapping.fields)) {
      const from = typeof spec === 'string' ? spec : spec.from;
      let value = lookup(row, from);
      if (typeof spec !== 'string') value = extractField(row, name, value, spec, fieldRegexes[name]);
      fields[name] = value;
    }
    const id = mapping.id !== undefined ? fillTemplate(mapping.id, row) : String(row.index);
    return { id, messages, fields };
  };
}

const PLACEHOLDER = /\$\{([^}]+)\}/g;

/** Replace each `${path}` with the row's value at that path; a missing field is an error naming the row. */
export function fillTemplate(template: string, row: DatasetRow): string {
  return template.replace(PLACEHOLDER, (_, path: string) => {
    const value = lookup(row, path.trim());
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

function lookup(row: DatasetRow, path: string): unknown {
  let value: unknown = row.data;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || !(key in value)) {
      throw new DatasetError(row.source, `missing field "${path}" (row has: ${Object.keys(row.data).join(', ')})`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  if (value === null || value === undefined) throw new DatasetError(row.source, `field "${path}" is empty`);
  return value;
}

function compileRegex(name: string, source: string | undefined): RegExp | undefined {
  if (source === undefined) return undefined;
  try {
    return new RegExp(source, 'm');
  } catch (err) {
    throw new Error(`mapping: fields.${name}.regex is not a valid regular expression: ${(err as Error).message}`);
  }
}

function extractField(
  row: DatasetRow,
  name: string,
  raw: unknown,
  spec: { from: string; trim: boolean; type: 'string' | 'number' },
  regex: RegExp | undefined,
): unknown {
  let value = raw;
  if (regex !== undefined) {
    const text = typeof raw === 'string' ? raw : String(raw);
    const match = regex.exec(text);
    if (!match) throw new DatasetError(row.source, `field "${spec.from}" does not match ${regex} (for "${name}")`);
    value = match[1] ?? match[0];
  }
  if (spec.trim && typeof value === 'string') value = value.trim();
  if (spec.type === 'number') {
    const n = typeof value === 'number' ? value : Number(String(value).replace(/,/g, ''));
    if (!Number.isFinite(n)) throw new DatasetError(row.source, `field "${name}" is not a number: ${JSON.stringify(value)}`);
    value = n;
  }
  return value;
}

function messagesFromField(row: DatasetRow, path: string): ChatMessage[] {
  const value = lookup(row, path);
  const ok = Array.isArray(value) && value.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string');
  if (!ok) throw new DatasetError(row.source, `field "${path}" is not a list of {role, content} messages`);
  return (value as ChatMessage[]).map((m) => ({ role: m.role, content: m.content }));
}
