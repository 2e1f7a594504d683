// The shape of a graph file (before node types are looked up). Node configs (`with:`) are checked
// later, against each node type's own zod schema.
import { z } from 'zod';

export const GRAPH_API_VERSION = 'grpoflow/v1';
export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** `producer.port`; node ids and port names are identifiers with `-`/`_`. */
export const EDGE_REF = /^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)$/;

const bufferSize = z.number().int().min(1).max(1_000_000);

export const edgeSchema = z.union([
  z.string(),
  z.strictObject({
    from: z.string(),
    /** Capacity of this stream edge's channel. */
    buffer: bufferSize.optional(),
  }),
]);

export const nodeEntrySchema = z.strictObject({
  type: z.string().min(1),
  version: z.number().int().min(1).optional(),
  description: z.string().optional(),
  /** Default channel capacity for this node's stream inputs. */
  buffer: bufferSize.optional(),
  in: z.record(z.string(), z.union([edgeSchema, z.array(edgeSchema)])).optional(),
  with: z.record(z.string(), z.unknown()).optional(),
});

export const graphFileSchema = z.strictObject({
  apiVersion: z.literal(GRAPH_API_VERSION),
  kind: z.literal('Graph'),
  metadata: z.strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
  }),
  backend: z.enum(BACKENDS).default('auto'),
  seed: z.number().int().default(0),
  params: z.record(z.string(), z.unknown()).default({}),
  plugins: z.array(z.string().min(1)).default([]),
  nodes: z.record(z.string().regex(/^[A-Za-z_][\w-]*$/, 'node ids are letters, digits, `_` and `-`'), nodeEntrySchema),
});

export type GraphFile = z.output<typeof graphFileSchema>;
export type NodeEntry = z.output<typeof nodeEntrySchema>;
export type EdgeEntry = z.output<typeof edgeSchema>;
