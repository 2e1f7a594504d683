// Loads and validates a graph file, collecting every problem: YAML syntax, file fields, `--set`,
// interpolation, plugins, node types and versions, node configs, edges, port types and cycles.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { NodeRegistry, PluginLoadError } from '../registry.js';
import { crossNodeChecks } from './cross-checks.js';
import { hasErrors, type Diagnostic } from './diagnostics.js';
import { graphFileSchema, type EdgeEntry, type GraphFile } from './graph-file.js';
import { interpolate } from './interpolate.js';
import { applyOverrides, parseOverride, type Override } from './overrides.js';
import { builtinRegistry, loadPluginInto } from './plugin-loader.js';
import type { ResolvedGraph, ResolvedNode } from './resolved.js';
import { parseYamlSource, type SourceMap } from './source.js';
import { loadInstalledPluginsFor } from './installed-plugins.js';
import { closest, didYouMean } from './suggest.js';
import { orderNodes, resolveEdges, type EdgeSource } from './validate-edges.js';
import { zodIssuesToDiagnostics } from './zod-issues.js';

export interface LoadOptions {
  /** `--set` overrides, as typed (`a.b=c`, `nodes.ID.with.key=value`). */
  set?: string[];
  /** Environment for `${env.*}` (defaults to process.env). */
  env?: Record<string, string | undefined>;
  /** Registry with the built-in nodes (defaults to the `core` plugin in nodes/). */
  registry?: NodeRegistry;
  /** `--allow-plugin-path`: plugins from absolute paths or outside the graph's folder (see plugin-loader.ts). */
  allowPluginPath?: boolean;
}

export interface LoadResult {
  /** Present only when there are no errors. */
  graph?: ResolvedGraph;
  diagnostics: Diagnostic[];
}

export async function loadGraphFile(file: string, options: LoadOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    return {
      diagnostics: [{ code: 'FILE_NOT_FOUND', severity: 'error', file, line: 0, col: 0, message: `cannot read graph file: ${(cause as Error).message}` }],
    };
  }
  return loadGraphText(text, file, options);
}

export async function loadGraphText(text: string, file: string, options: LoadOptions = {}): Promise<LoadResult> {
  const diagnostics: Diagnostic[] = [];
  const parsed = parseYamlSource(text, file);
  if (parsed.diagnostics.length > 0) return { diagnostics: parsed.diagnostics };
  const map = parsed.map;
  let raw = parsed.value;

  // --set first, so overridden params reach every reference to them.
  const overrides: Override[] = [];
  for (const text of options.set ?? []) {
    const o = parseOverride(text);
    if ('code' in o) diagnostics.push(o);
    else overrides.push(o);
  }
  diagnostics.push(...applyOverrides(raw, overrides, map));

  // Interpolation: params may use env; everything else may use params and env.
  // The env values the graph reads are remembered, so the run can keep them out of its logs.
  const envSource = options.env ?? process.env;
  const envValues: Record<string, string> = {};
  const env = new Proxy(envSource, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof name === 'string' && typeof value === 'string') envValues[name] = value;
      return value;
    },
  });
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>;
    const params = interpolate(obj.params ?? {}, ['params'], { params: {}, env, allowParams: false }, map, diagnostics);
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      rest[k] = k === 'params' ? params : interpolate(v, [k], { params: (params ?? {}) as Record<string, unknown>, env, allowParams: true }, map, diagnostics);
    }
    raw = rest;
  }

  const fileCheck = graphFileSchema.safeParse(raw);
  if (!fileCheck.success) {
    diagnostics.push(
      ...zodIssuesToDiagnostics(fileCheck.error.issues, {
        schema: graphFileSchema,
        basePath: [],
        map,
        subject: 'the graph file',
        unknownKeyCode: 'BAD_GRAPH_FIELD',
        badValueCode: 'BAD_GRAPH_FIELD',
      }),
    );
  }
  // Keep going with whatever parts are usable, so node-level errors are reported too.
  const graphFile = (fileCheck.success ? fileCheck.data : partialGraph(raw)) as GraphFile;
  const baseDir = path.dirname(path.resolve(file));

  const registry = (options.registry ?? (await builtinRegistry())).clone();
  for (const [i, spec] of (graphFile.plugins ?? []).entries()) {
    try {
      await loadPluginInto(registry, spec, baseDir, { allowPluginPath: options.allowPluginPath });
    } catch (cause) {
      if (!(cause instanceof PluginLoadError)) throw cause;
      diagnostics.push({
        code: cause.code,
        severity: 'error',
        ...map.value(['plugins', i]),
        message: cause.message,
        suggestion: cause.suggestion,
        details: cause.details,
      });
    }
  }

  const nodeTypes = Object.values(graphFile.nodes ?? {}).flatMap((entry) => (entry && typeof entry.type === 'string' ? [entry.type] : []));
  await loadInstalledPluginsFor(registry, nodeTypes, baseDir);

  const sources: EdgeSource[] = [];
  for (const [id, entry] of Object.entries(graphFile.nodes ?? {})) {
    if (!entry || typeof entry !== 'object' || typeof entry.type !== 'string') continue;
    const node = resolveNode(id, entry, registry, map, diagnostics);
    if (node) sources.push({ id, node, rawIn: (entry.in ?? {}) as Record<string, EdgeEntry | EdgeEntry[]>, defaultBuffer: entry.buffer });
  }
  const edges = resolveEdges(sources, new Set(Object.keys(graphFile.nodes ?? {})), map, diagnostics);
  for (const e of edges) sources.find((s) => s.id === e.to.node)!.node.inputs[e.to.port] ??= [];
  for (const e of edges) sources.find((s) => s.id === e.to.node)!.node.inputs[e.to.port].push(e);
  const order = orderNodes(sources.map((s) => s.id), edges, map, diagnostics);
  if (!hasErrors(diagnostics)) diagnostics.push(...crossNodeChecks(sources.map((s) => s.node), edges, map));

  if (hasErrors(diagnostics) || !fileCheck.success) return { diagnostics };
  const byId = new Map(sources.map((s) => [s.id, s.node]));
  return {
    diagnostics,
    graph: {
      file,
      baseDir,
      name: graphFile.metadata.name,
      backend: graphFile.backend,
      seed: graphFile.seed,
      params: graphFile.params,
      nodes: order.map((id) => byId.get(id)!),
      edges,
      registry,
      envValues,
    },
  };
}

function partialGraph(raw: unknown): Partial<GraphFile> {
  if (raw === null || typeof raw !== 'object') return {};
  const obj = raw as Record<string, unknown>;
  const nodes = obj.nodes !== null && typeof obj.nodes === 'object' ? (obj.nodes as GraphFile['nodes']) : {};
  const plugins = Array.isArray(obj.plugins) ? obj.plugins.filter((p): p is string => typeof p === 'string') : [];
  return { nodes, plugins };
}

function resolveNode(id: string, entry: GraphFile['nodes'][string], registry: NodeRegistry, map: SourceMap, diagnostics: Diagnostic[]): ResolvedNode | undefined {
  const found = registry.get(entry.type, entry.version);
  if (!found) {
    const versions = registry.versions(entry.type);
    if (versions.length > 0) {
      diagnostics.push({
        code: 'UNKNOWN_NODE_VERSION',
        severity: 'error',
        ...map.value(['nodes', id, 'version']),
        message: `node type \`${entry.type}\` has no version ${entry.version} (registered: ${versions.join(', ')})`,
        suggestion: `use \`version: ${versions[versions.length - 1]}\``,
        details: { type: entry.type, version: entry.version, versions },
      });
    } else {
      diagnostics.push({
        code: 'UNKNOWN_NODE_TYPE',
        severity: 'error',
        ...map.value(['nodes', id, 'type']),
        message: `unknown node type \`${entry.type}\` for node \`${id}\``,
        suggestion: didYouMean(entry.type, registry.types()) ?? pluginHint(entry.type, registry),
        details: { type: entry.type },
      });
    }
    return undefined;
  }
  const versions = registry.versions(entry.type);
  if (entry.version === undefined && versions.length > 1) {
    diagnostics.push({
      code: 'UNPINNED_NODE_VERSION',
      severity: 'warning',
      ...map.value(['nodes', id, 'type']),
      message: `node \`${id}\` does not pin a version of \`${entry.type}\`; using the latest, ${found.version}`,
      suggestion: `add \`version: ${found.version}\` to keep this graph's behaviour when a newer version is released`,
      details: { type: entry.type, versions },
    });
  }
  const schema = found.def.config as z.ZodType;
  const check = schema.safeParse(entry.with ?? {});
  let config: unknown;
  if (check.success) config = check.data;
  else {
    diagnostics.push(
      ...zodIssuesToDiagnostics(check.error.issues, {
        schema,
        basePath: ['nodes', id, 'with'],
        map,
        subject: `node \`${id}\` (${found.type}) config`,
        unknownKeyCode: 'UNKNOWN_CONFIG_KEY',
        badValueCode: 'BAD_CONFIG_VALUE',
      }),
    );
  }
  return { id, type: found.type, version: found.version, node: found, config, inputs: {} };
}

function pluginHint(type: string, registry: NodeRegistry): string | undefined {
  const slash = type.indexOf('/');
  if (slash <= 0) return undefined;
  const plugin = type.slice(0, slash);
  if (registry.hasPlugin(plugin)) return undefined;
  const near = closest(plugin, registry.listPlugins().map((p) => p.name));
  return near && near !== plugin
    ? `did you mean plugin \`${near}\`?`
    : `plugin \`${plugin}\` is not loaded: install its package (\`npm install\`) beside the graph or in the project, or name its path in \`plugins:\``;
}
