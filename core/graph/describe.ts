// Plain-data descriptions of node types, for `grpoflow nodes` and the graph-file JSON Schema.
import { z } from 'zod';
import type { InputSpec, OutputSpec } from '../plugin.js';
import type { NodeRegistry, RegisteredNode } from '../registry.js';
import { listArchitectures } from '../llm/architectures/index.js';
import { listChatTemplates } from '../llm/chat-templates/index.js';

export interface PortDescription {
  type: string;
  kind: string;
  description?: string;
  optional?: boolean;
  multiple?: boolean;
  feedback?: boolean;
}

export interface NodeDescription {
  type: string;
  version: number;
  latest: boolean;
  plugin: string;
  origin: string;
  description?: string;
  inputs: Record<string, PortDescription>;
  outputs: Record<string, PortDescription>;
  /** JSON Schema of `with:` (input side: fields with defaults are optional). */
  config: Record<string, unknown>;
}

export function configJsonSchema(node: RegisteredNode): Record<string, unknown> {
  try {
    const schema = z.toJSONSchema(node.def.config as z.ZodType, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete schema.$schema;
    return schema;
  } catch {
    return {};
  }
}

export function describeNode(node: RegisteredNode, latest: boolean): NodeDescription {
  const port = (spec: InputSpec | OutputSpec): PortDescription => {
    const input = spec as InputSpec;
    return {
      type: spec.type.name,
      kind: spec.type.kind,
      ...(spec.description ?? spec.type.description ? { description: spec.description ?? spec.type.description } : {}),
      ...(input.optional ? { optional: true } : {}),
      ...(input.multiple ? { multiple: true } : {}),
      ...(input.feedback ? { feedback: true } : {}),
    };
  };
  const mapPorts = (specs: Record<string, InputSpec | OutputSpec>) => Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, port(v)]));
  return {
    type: node.type,
    version: node.version,
    latest,
    plugin: node.plugin,
    origin: node.origin,
    ...(node.def.description ? { description: node.def.description } : {}),
    inputs: mapPorts(node.def.inputs),
    outputs: mapPorts(node.def.outputs),
    config: configJsonSchema(node),
  };
}

export function describeRegistry(registry: NodeRegistry): NodeDescription[] {
  return registry.list().map((n) => describeNode(n, registry.get(n.type)?.version === n.version));
}

/** What a registry offers besides nodes: engines, and the architectures and chat templates loaders find by name. */
export interface EnginesDescription {
  rolloutEngines: { name: string; plugin: string; description: string; threads: string[] }[];
  modelEngines: { name: string; plugin: string; description: string }[];
  /** `origin` is `core` for the built-in ones, else the plugin that added it. */
  architectures: { name: string; origin: string }[];
  chatTemplates: { name: string; origin: string }[];
}

export function describeEngines(registry: NodeRegistry): EnginesDescription {
  return {
    rolloutEngines: registry.listEngines().map(({ def, plugin }) => ({ name: def.name, plugin, description: def.description, threads: [...def.threads] })),
    modelEngines: registry.listModelEngines().map(({ def, plugin }) => ({ name: def.name, plugin, description: def.description })),
    architectures: listArchitectures().map(({ def, origin }) => ({ name: def.name, origin })),
    chatTemplates: listChatTemplates().map(({ template, origin }) => ({ name: template.name, origin })),
  };
}
