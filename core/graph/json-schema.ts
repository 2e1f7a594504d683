// JSON Schema (draft 2020-12) of graph files, including every registered node's config, so editors
// complete `with:` per node type and `in:` per input port (`# yaml-language-server: $schema=...`).
// Values may be `${params.x}` / `${env.NAME}` references, replaced before validation: each typed field
// (a number, a boolean, an enum, a list, an object) also accepts a string that is exactly one reference.
import { z } from 'zod';
import type { NodeRegistry } from '../registry.js';
import { configJsonSchema, describeNode, type PortDescription } from './describe.js';
import { graphFileSchema } from './graph-file.js';

type Schema = Record<string, any>;

/** A string that is exactly one reference (the pattern of interpolate.ts's REFERENCE, anchored). */
const REFERENCE_DEFINITION: Schema = {
  type: 'string',
  pattern: '^\\$\\{(params|env)\\.[A-Za-z0-9_.-]+?(:-[^}]*)?\\}$',
  description: 'A `${params.x}` or `${env.NAME}` reference, replaced by its value before the graph is checked.',
};
/** Where typed values point for their reference alternative (one definition, in `$defs`). */
const REFERENCE_SCHEMA: Schema = { $ref: '#/$defs/reference' };

/** Keywords that describe a value rather than constrain it: kept on the outside of the wrapper. */
const ANNOTATIONS = ['title', 'description', 'markdownDescription', 'default', 'examples', 'deprecated'];
const STRING_CONSTRAINTS = ['enum', 'const', 'pattern', 'format', 'minLength', 'maxLength'];

function acceptsAnyString(schema: Schema): boolean {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.includes('string') && !STRING_CONSTRAINTS.some((k) => k in schema) && !schema.anyOf && !schema.oneOf && !schema.allOf;
}

function isUnconstrained(schema: Schema): boolean {
  return Object.keys(schema).every((k) => ANNOTATIONS.includes(k));
}

/** `schema` with every typed value, at any depth, also accepting a reference string. */
export function acceptReferences(schema: Schema): Schema {
  if (typeof schema !== 'object' || schema === null) return schema;
  const inner: Schema = { ...schema };
  if (inner.properties) inner.properties = Object.fromEntries(Object.entries(inner.properties).map(([k, v]) => [k, acceptReferences(v as Schema)]));
  if (inner.additionalProperties && typeof inner.additionalProperties === 'object') inner.additionalProperties = acceptReferences(inner.additionalProperties);
  if (Array.isArray(inner.prefixItems)) inner.prefixItems = inner.prefixItems.map(acceptReferences);
  if (inner.items && typeof inner.items === 'object') inner.items = acceptReferences(inner.items);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    // The members' children accept references; the member itself is covered by the wrapper below.
    if (Array.isArray(inner[key])) inner[key] = inner[key].map((member: Schema) => unwrap(acceptReferences(member)));
  }
  if (acceptsAnyString(inner) || isUnconstrained(inner)) return inner;
  const outer: Schema = {};
  for (const key of ANNOTATIONS) {
    if (key in inner) {
      outer[key] = inner[key];
      delete inner[key];
    }
  }
  if (Object.keys(inner).length === 1 && Array.isArray(inner.anyOf)) return { ...outer, anyOf: [...inner.anyOf, REFERENCE_SCHEMA] };
  return { ...outer, anyOf: [inner, REFERENCE_SCHEMA] };
}

/** The typed alternative of a wrapper made by acceptReferences (for members of a union). */
function unwrap(schema: Schema): Schema {
  if (!Array.isArray(schema.anyOf) || schema.anyOf.at(-1) !== REFERENCE_SCHEMA) return schema;
  const rest = schema.anyOf.slice(0, -1);
  const { anyOf: _anyOf, ...annotations } = schema;
  return rest.length === 1 ? { ...annotations, ...rest[0] } : { ...annotations, anyOf: rest };
}

function portHover(name: string, port: PortDescription): string {
  const flags = [port.optional && 'optional', port.multiple && 'a list of edges', port.feedback && 'feedback'].filter(Boolean);
  const about = port.description ? ` — ${port.description.replace(/\.$/, '')}` : '';
  return `${name}: ${port.kind} ${port.type}${flags.length ? ` (${flags.join(', ')})` : ''}${about}. An edge \`node.output\`.`;
}

export function graphJsonSchema(registry: NodeRegistry): Record<string, unknown> {
  const base = z.toJSONSchema(graphFileSchema, { io: 'input', target: 'draft-2020-12' }) as Schema;
  const types = registry.types();
  const nodeSchema = base.properties.nodes.additionalProperties as Schema;
  nodeSchema.properties.type = { type: 'string', enum: types, description: 'The node type (`plugin/name` for plugin nodes).' };
  for (const key of ['version', 'buffer']) nodeSchema.properties[key] = acceptReferences(nodeSchema.properties[key]);
  const edgeDefinition = nodeSchema.properties.in.additionalProperties.anyOf[0] as Schema;
  const edge: Schema = { $ref: '#/$defs/edge' };
  // One if/then per type and version: `with` is checked against that node's config schema, and `in`
  // names that node's input ports (so editors complete them).
  nodeSchema.allOf = registry.list().map((node) => {
    const isLatest = registry.get(node.type)?.version === node.version;
    // The latest version also applies when `version` is left out.
    const condition = isLatest
      ? { properties: { type: { const: node.type } }, required: ['type'], anyOf: [{ not: { required: ['version'] } }, { properties: { version: { const: node.version } } }] }
      : { properties: { type: { const: node.type }, version: { const: node.version } }, required: ['type', 'version'] };
    const inputs = describeNode(node, isLatest).inputs;
    const ports = Object.fromEntries(
      Object.entries(inputs).map(([name, port]) => [
        name,
        { description: portHover(name, port), ...(port.multiple ? { anyOf: [edge, { type: 'array', items: edge }] } : edge) } as Schema,
      ]),
    );
    return {
      if: condition,
      // `with:` itself stays an object (its fields take references), so editors complete its keys.
      then: { properties: { with: unwrap(acceptReferences(configJsonSchema(node))), in: { type: 'object', properties: ports, additionalProperties: false } } },
    };
  });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://grpoflow.dev/schema/graph-v1.json',
    title: 'grpoflow graph file',
    ...Object.fromEntries(Object.entries(base).filter(([k]) => k !== '$schema')),
    $defs: { reference: REFERENCE_DEFINITION, edge: edgeDefinition },
  };
}
