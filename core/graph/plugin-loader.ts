// Finds and imports plugin packages. A plugin is an npm package (resolved from the graph file's folder,
// then from the grpoflow project) or a relative path to a package folder or a module file. A package
// declares itself in package.json: `"grpoflow": {"apiVersion": 1, "plugin": "./dist/index.js"}`.
//
// Loading a plugin runs its code, and `grpoflow validate` loads them: so a graph file may only name
// packages (found in node_modules) or relative paths inside its own folder, and a package's `plugin`
// field must stay inside the package. An absolute path, a path out of the graph's folder, or a
// package pointing outside itself (symlinks resolved) is PLUGIN_PATH_NOT_ALLOWED unless the user
// says `--allow-plugin-path` (for the graph's author, not for whoever runs a graph they were sent).
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../package-root.js';
import type { PluginDefinition } from '../plugin.js';
import { PLUGIN_API_VERSION } from '../plugin.js';
import { CORE_PLUGIN, NodeRegistry, PluginLoadError } from '../registry.js';

export const PROJECT_ROOT = PACKAGE_ROOT;

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

export interface PluginLoadOptions {
  /** Allow absolute paths, paths out of the graph's folder, and packages whose plugin file is outside them. */
  allowPluginPath?: boolean;
}

/** Whether `target` is `dir` or inside it, symlinks resolved. */
function isInside(target: string, dir: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  const relative = path.relative(real(dir), real(target));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
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
export function resolvePlugin(spec: string, baseDir: string, options: PluginLoadOptions = {}): { file: string; origin: string } {
  let packageDir: string | undefined;
  if (isPathSpec(spec)) {
    const target = path.resolve(baseDir, spec);
    if (!options.allowPluginPath && (path.isAbsolute(spec) || !isInside(target, baseDir))) {
      throw new PluginLoadError(
        'PLUGIN_PATH_NOT_ALLOWED',
        `plugin path \`${spec}\` is ${path.isAbsolute(spec) ? 'absolute' : `outside the graph's folder ${baseDir}`}: a graph may load plugins from node_modules or from its own folder only`,
        { spec, path: target },
        'install it as a package, move it into the graph\'s folder, or pass --allow-plugin-path',
      );
    }
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
  const file = path.resolve(packageDir, decl.plugin);
  if (!options.allowPluginPath && !isInside(file, packageDir)) {
    throw new PluginLoadError(
      'PLUGIN_PATH_NOT_ALLOWED',
      `plugin package ${origin} points its "grpoflow.plugin" field at ${file}, outside the package`,
      { spec, file },
      'a plugin package must ship its module inside itself; pass --allow-plugin-path to load it anyway',
    );
  }
  return { file, origin };
}

export async function loadPluginInto(registry: NodeRegistry, spec: string, baseDir: string, options: PluginLoadOptions = {}): Promise<void> {
  const { file, origin } = resolvePlugin(spec, baseDir, options);
  registry.register(await importPluginModule(file, origin), origin);
}

let coreRegistry: Promise<NodeRegistry> | undefined;

/** What every run has: the core nodes and the tfjs engine (module path without extension, origin). */
const BUILTIN_PLUGINS: [string, string][] = [
  ['nodes/index', `${CORE_PLUGIN} (nodes/index.ts)`],
  ['engines/tfjs/plugin', 'tfjs (engines/tfjs/plugin.ts)'],
  ['engines/openai/plugin', 'openai (engines/openai/plugin.ts)'],
  ['engines/llama-cpp/plugin', 'llama.cpp (engines/llama-cpp/plugin.ts)'],
  ['engines/webgpu/plugin', 'webgpu (engines/webgpu/plugin.ts)'],
];

/** A registry holding the built-in nodes (the `core` plugin), loaded once per process. */
export function builtinRegistry(): Promise<NodeRegistry> {
  coreRegistry ??= (async () => {
    const registry = new NodeRegistry();
    // The built-in nodes, then the built-in engines (loaded by path: core and nodes import no engine).
    for (const [relative, origin] of BUILTIN_PLUGINS) {
      // The sources in this repository; the compiled dist/ in an installed package.
      const source = path.join(PROJECT_ROOT, `${relative}.ts`);
      const file = existsSync(source) ? source : path.join(PROJECT_ROOT, 'dist', `${relative}.js`);
      registry.register(await importPluginModule(file, origin), origin);
    }
    return registry;
  })();
  return coreRegistry;
}
