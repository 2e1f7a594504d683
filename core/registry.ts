// The node registry: every node type by name and version. Built-in nodes (the `core` plugin in
// nodes/index.ts) and third-party plugins are registered through the same `register` call; only the
// core plugin's types are un-namespaced.
import type { InputSpec, NodeDefinition, PluginDefinition } from './plugin.js';
import { PLUGIN_API_VERSION } from './plugin.js';
import type { RolloutEngineDefinition } from './engine/interfaces.js';
import type { ModelEngineDefinition } from './engine/model-engine.js';
import { registerArchitecture } from './llm/architectures/index.js';
import { registerChatTemplate } from './llm/chat-templates/index.js';

export const CORE_PLUGIN = 'core';
/** Output names the runtime reserves: `done` is how a sink with no outputs says it has finished. */
export const RESERVED_OUTPUTS = new Set(['done']);

export type PluginErrorCode = 'UNKNOWN_PLUGIN' | 'BAD_PLUGIN' | 'PLUGIN_API_MISMATCH' | 'DUPLICATE_NODE_TYPE' | 'PLUGIN_PATH_NOT_ALLOWED';

export class PluginLoadError extends Error {
  constructor(
    readonly code: PluginErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly suggestion?: string,
  ) {
    super(message);
    this.name = 'PluginLoadError';
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyNodeDefinition = NodeDefinition<any, any, any>;

export interface RegisteredNode {
  /** Full type name: `dataset.load` (core) or `example/uppercase` (plugin). */
  type: string;
  version: number;
  plugin: string;
  /** Where the plugin came from (package name and path), for messages. */
  origin: string;
  def: AnyNodeDefinition;
}

export interface RegisteredEngine {
  plugin: string;
  origin: string;
  def: RolloutEngineDefinition;
}

export interface RegisteredModelEngine {
  plugin: string;
  origin: string;
  def: ModelEngineDefinition;
}

export interface RegisteredPlugin {
  name: string;
  apiVersion: number;
  origin: string;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, Map<number, RegisteredNode>>();
  private readonly plugins = new Map<string, RegisteredPlugin>();
  private readonly engines = new Map<string, RegisteredEngine>();
  private readonly modelEngineTable = new Map<string, RegisteredModelEngine>();

  /** Registers every node of `plugin`; nothing is registered if any check fails. */
  register(plugin: PluginDefinition, origin: string): void {
    if (!plugin || typeof plugin !== 'object' || typeof plugin.name !== 'string' || !Array.isArray(plugin.nodes)) {
      throw new PluginLoadError('BAD_PLUGIN', `${origin} does not export a plugin made with definePlugin({ name, apiVersion, nodes })`, { origin });
    }
    if (plugin.apiVersion !== PLUGIN_API_VERSION) {
      throw new PluginLoadError(
        'PLUGIN_API_MISMATCH',
        `plugin \`${plugin.name}\` (${origin}) was written for plugin API ${plugin.apiVersion}; this grpoflow speaks API ${PLUGIN_API_VERSION}`,
        { plugin: plugin.name, origin, pluginApiVersion: plugin.apiVersion, apiVersion: PLUGIN_API_VERSION },
        'install a version of the plugin built for this grpoflow',
      );
    }
    const existing = this.plugins.get(plugin.name);
    if (existing) {
      throw new PluginLoadError(
        'DUPLICATE_NODE_TYPE',
        `plugin \`${plugin.name}\` from ${origin} is already registered from ${existing.origin}`,
        { plugin: plugin.name, origin, existing: existing.origin },
      );
    }
    const staged: RegisteredNode[] = [];
    for (const def of plugin.nodes) {
      const type = qualifiedType(plugin.name, def?.type);
      if (!def || typeof def.run !== 'function' || !Number.isInteger(def.version) || def.version < 1 || !def.config?.safeParse) {
        throw new PluginLoadError('BAD_PLUGIN', `node \`${type}\` of plugin \`${plugin.name}\` is not a valid defineNode({ type, version, inputs, outputs, config, run })`, { plugin: plugin.name, type });
      }
      for (const name of Object.keys(def.outputs ?? {})) {
        if (RESERVED_OUTPUTS.has(name)) {
          throw new PluginLoadError('BAD_PLUGIN', `node \`${type}\` declares an output named \`${name}\`, which the runtime reserves`, { type, output: name });
        }
      }
      for (const [name, input] of Object.entries((def.inputs ?? {}) as Record<string, InputSpec>)) {
        if (input.feedback && input.type?.kind !== 'latest') {
          throw new PluginLoadError('BAD_PLUGIN', `node \`${type}\` input \`${name}\` is declared feedback but its port kind is ${input.type?.kind}; feedback inputs must be \`latest\` ports`, { type, input: name });
        }
      }
      const clash = this.nodes.get(type)?.get(def.version) ?? staged.find((n) => n.type === type && n.version === def.version);
      if (clash) {
        throw new PluginLoadError(
          'DUPLICATE_NODE_TYPE',
          `node type \`${type}\` version ${def.version} from ${origin} is already registered by ${clash.origin}`,
          { type, version: def.version, origin, existing: clash.origin },
        );
      }
      staged.push({ type, version: def.version, plugin: plugin.name, origin, def });
    }
    const engines = plugin.rolloutEngines ?? [];
    for (const engine of engines) {
      if (!engine || typeof engine.name !== 'string' || typeof engine.create !== 'function' || !Array.isArray(engine.threads)) {
        throw new PluginLoadError('BAD_PLUGIN', `a rollout engine of plugin \`${plugin.name}\` is not a valid { name, description, threads, create }`, { plugin: plugin.name });
      }
      if (engine.threads.includes('worker') && (typeof engine.worker?.module !== 'string' || typeof engine.worker.create !== 'function' || typeof engine.worker.prepare !== 'function')) {
        throw new PluginLoadError(
          'BAD_PLUGIN',
          `rollout engine \`${engine.name}\` of plugin \`${plugin.name}\` lists the worker thread but has no \`worker: { module, exportName, prepare, create }\` saying how a worker builds it`,
          { plugin: plugin.name, engine: engine.name },
        );
      }
    }
    refuseDuplicateNames('rollout engine', engines, this.engines, origin);
    const modelEngines = plugin.modelEngines ?? [];
    for (const engine of modelEngines) {
      if (!engine || typeof engine.name !== 'string' || typeof engine.load !== 'function' || typeof engine.policyTrainer !== 'function') {
        throw new PluginLoadError('BAD_PLUGIN', `a model engine of plugin \`${plugin.name}\` is not a valid ModelEngineDefinition (core/engine/model-engine.ts)`, { plugin: plugin.name });
      }
    }
    refuseDuplicateNames('model engine', modelEngines, this.modelEngineTable, origin);
    try {
      // Architectures and chat templates are looked up by name wherever a model or template is loaded,
      // so they go into the process-wide tables.
      for (const def of plugin.architectures ?? []) registerArchitecture(def, `plugin \`${plugin.name}\` (${origin})`);
      for (const template of plugin.chatTemplates ?? []) registerChatTemplate(template, `plugin \`${plugin.name}\` (${origin})`);
    } catch (error) {
      throw new PluginLoadError('DUPLICATE_NODE_TYPE', (error as Error).message, { plugin: plugin.name, origin });
    }
    for (const engine of engines) this.engines.set(engine.name, { plugin: plugin.name, origin, def: engine });
    for (const engine of modelEngines) this.modelEngineTable.set(engine.name, { plugin: plugin.name, origin, def: engine });
    for (const node of staged) {
      let versions = this.nodes.get(node.type);
      if (!versions) this.nodes.set(node.type, (versions = new Map()));
      versions.set(node.version, node);
    }
    this.plugins.set(plugin.name, { name: plugin.name, apiVersion: plugin.apiVersion, origin });
  }

  /** The node type at `version`, or its latest version when `version` is undefined. */
  get(type: string, version?: number): RegisteredNode | undefined {
    const versions = this.nodes.get(type);
    if (!versions) return undefined;
    if (version !== undefined) return versions.get(version);
    return versions.get(Math.max(...versions.keys()));
  }

  versions(type: string): number[] {
    return [...(this.nodes.get(type)?.keys() ?? [])].sort((a, b) => a - b);
  }

  types(): string[] {
    return [...this.nodes.keys()].sort();
  }

  /** Every registered node, every version, sorted by type then version. */
  list(): RegisteredNode[] {
    return this.types().flatMap((t) => this.versions(t).map((v) => this.nodes.get(t)!.get(v)!));
  }

  listPlugins(): RegisteredPlugin[] {
    return [...this.plugins.values()];
  }

  hasPlugin(name: string): boolean {
    return this.plugins.has(name);
  }

  /** The rollout engine registered as `name`. */
  engine(name: string): RegisteredEngine | undefined {
    return this.engines.get(name);
  }

  /** Every registered rollout engine, by name. */
  listEngines(): RegisteredEngine[] {
    return [...this.engines.values()].sort((a, b) => a.def.name.localeCompare(b.def.name));
  }

  /** The model engine registered as `name`. */
  modelEngine(name: string): RegisteredModelEngine | undefined {
    return this.modelEngineTable.get(name);
  }

  /** Every registered model engine, by name. */
  listModelEngines(): RegisteredModelEngine[] {
    return [...this.modelEngineTable.values()].sort((a, b) => a.def.name.localeCompare(b.def.name));
  }

  /** A copy to which a graph's own plugins can be added without touching the shared one. */
  clone(): NodeRegistry {
    const copy = new NodeRegistry();
    for (const [type, versions] of this.nodes) copy.nodes.set(type, new Map(versions));
    for (const [name, plugin] of this.plugins) copy.plugins.set(name, plugin);
    for (const [name, engine] of this.engines) copy.engines.set(name, engine);
    for (const [name, engine] of this.modelEngineTable) copy.modelEngineTable.set(name, engine);
    return copy;
  }
}

/** Throws when one of `incoming` (a plugin's engines of one kind) has a name already registered or used twice in the plugin. */
function refuseDuplicateNames(kind: string, incoming: { name: string }[], registered: Map<string, { origin: string }>, origin: string): void {
  for (const { name } of incoming) {
    const clash = registered.get(name) ?? (incoming.filter((e) => e.name === name).length > 1 ? { origin } : undefined);
    if (clash) {
      throw new PluginLoadError('DUPLICATE_NODE_TYPE', `${kind} \`${name}\` from ${origin} is already registered by ${clash.origin}`, { engine: name, origin, existing: clash.origin });
    }
  }
}

function qualifiedType(pluginName: string, type: unknown): string {
  const name = String(type);
  if (pluginName === CORE_PLUGIN) return name;
  return name.startsWith(`${pluginName}/`) ? name : `${pluginName}/${name}`;
}
