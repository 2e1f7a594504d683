// JSON Schema (draft 2020-12) of graph files, including every registered node's config, so editors
// complete `with:` per node type (`# yaml-language-server: $schema=...`).
import { z } from 'zod';
import type { NodeRegistry } from '../registry.js';
import { configJsonSchema } from './describe.js';
import { graphFileSchema } from './graph-file.js';

export function graphJsonSchema(registry: NodeRegistry): Record<string, unknown> {
  const base = z.toJSONSchema(graphFileSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, any>;
  const types = registry.types();
  const nodeSchema = base.properties.nodes.additionalProperties as Record<string, any>;
  nodeSchema.properties.type = { type: 'string', enum: types, description: 'The node type (`plugin/name` for plugin nodes).' };
  // One if/then per type and version: `with` is checked against that node's config schema.
  nodeSchema.allOf = registry.list().map((node) => {
    const isLatest = registry.get(node.type)?.version === node.version;
    // The latest version also applies when `version` is left out.
    const condition = isLatest
      ? { properties: { type: { const: node.type } }, required: ['type'], anyOf: [{ not: { required: ['version'] } }, { properties: { version: { const: node.version } } }] }
      : { properties: { type: { const: node.type }, version: { const: node.version } }, required: ['type', 'version'] };
    return {
      if: condition,
      then: { properties: { with: configJsonSchema(node) } },
    };
  });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://grpoflow.dev/schema/graph-v1.json',
    title: 'grpoflow graph file',
    ...Object.fromEntries(Object.entries(base).filter(([k]) => k !== '$schema')),
  };
}
