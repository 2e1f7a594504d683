// Finds and imports plugin packages. A plugin is an npm package (resolved from the graph file's folder,
// then from the grpoflow project) or a relative path to a package folder or a module file. A package
// declares itself in package.json: `"grpoflow": {"apiVersion": 1, "plugin": "./dist/index.js"}`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PluginDefinition } from '../plugin.js';
import { PLUGIN_API_VERSION } from '../plugin.js';
import { CORE_PLUGIN, NodeRegistry, PluginLoadError } from '../registry.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface PackageJson {
  name?: string;
  keywords?: string[];
  grpoflow?: { apiVersion?: unknown; plugin?: unknown };
}

function findPackageDir(name: string, fromDirs: string[]): string | undefined {
  for (const start of fromDirs) {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) return candidate;
      if (path.dirname(dir) === dir) break;
    }
  }
  return undefined;
}

function isPathSpec(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..' || path.isAbsolute(spec);
}

/** Imports a plugin module and returns its `default` (or `plugin`) export. The one path every plugin takes, core included. */
export async function importPluginModule(file: string, origin: string): Promise<PluginDefinition> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (cause) {
    throw new PluginLoadError('BAD_PLUGIN', `could not import plugin ${origin}: ${(cause as Error).message}`, { origin, file });
  }
  const plugin = (mod.default ?? mod.plugin) as PluginDefinition | undefined;
  if (!plugin || typeof plugin !== 'object') {
    throw new PluginLoadError('BAD_PLUGIN', `${origin} has no default export made with definePlugin(...)`, { origin, file });
  }
  return plugin;
}

/** Resolves `spec` to a plugin module file, checking the package's declared apiVersion before importing. */
export function resolvePlugin(spec: string, baseDir: string): { file: string; origin: string } {
  let packageDir: string | undefined;
  if (isPathSpec(spec)) {
    const target = path.resolve(baseDir, spec);
    if (!existsSync(target)) {
      throw new PluginLoadError('UNKNOWN_PLUGIN', `plugin path \`${spec}\` does not exist (resolved to ${target})`, { spec, path: target });
    }
    if (statSync(target).isFile()) return { file: target, origin: spec };
    packageDir = target;
  } else {
    packageDir = findPackageDir(spec, [baseDir, PROJECT_ROOT]);
    if (!packageDir) {
      throw new PluginLoadError(
        'UNKNOWN_PLUGIN',
        `plugin package \`${spec}\` is not installed (looked in node_modules from ${baseDir} and ${PROJECT_ROOT})`,
        { spec },
        `run \`npm install ${spec}\``,
      );
    }
  }
  const pkgFile = path.join(packageDir, 'package.json');
  if (!existsSync(pkgFile)) {
    throw new PluginLoadError('BAD_PLUGIN', `plugin folder ${packageDir} has no package.json`, { spec });
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
  const origin = `${pkg.name ?? spec} (${packageDir})`;
  const decl = pkg.grpoflow;
  if (!decl || typeof decl.plugin !== 'string') {
    throw new PluginLoadError(
      'BAD_PLUGIN',
      `package ${origin} is not a grpoflow plugin: its package.json has no "grpoflow": {"apiVersion", "plugin"} field`,
      { spec },
    );
  }
  if (decl.apiVersion !== PLUGIN_API_VERSION) {
    throw new PluginLoadError(
      'PLUGIN_API_MISMATCH',
      `plugin package ${origin} declares apiVersion ${String(decl.apiVersion)}; this grpoflow speaks plugin API ${PLUGIN_API_VERSION}`,
      { spec, pluginApiVersion: decl.apiVersion, apiVersion: PLUGIN_API_VERSION },
      'install a version of the plugin built for this grpoflow',
    );
  }
  return { file: path.resolve(packageDir, decl.plugin), origin };
}

export async function loadPluginInto(registry: NodeRegistry, spec: string, baseDir: string): Promise<void> {
  const { file, origin } = resolvePlugin(spec, baseDir);
  registry.register(await importPluginModule(file, origin), origin);
}

let coreRegistry: Promise<NodeRegistry> | undefined;

/** A registry holding the built-in nodes (the `core` plugin), loaded once per process. */
export function builtinRegistry(): Promise<NodeRegistry> {
  coreRegistry ??= (async () => {
    const registry = new NodeRegistry();
    const file = path.join(PROJECT_ROOT, 'nodes', 'index.ts');
    const plugin = await importPluginModule(file, `${CORE_PLUGIN} (nodes/index.ts)`);
    registry.register(plugin, `${CORE_PLUGIN} (nodes/index.ts)`);
    return registry;
  })();
  return coreRegistry;
}
