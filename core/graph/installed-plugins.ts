// The one discovery rule: an installed plugin package (keyword `grpoflow-plugin` and a "grpoflow" field,
// found in node_modules beside the graph or of the grpoflow project) is usable by `validate` and `run`
// exactly as `grpoflow nodes` lists it. A graph's `plugins:` list is needed only for paths and for
// packages outside those node_modules folders; installed plugins are loaded when a node's type names a
// plugin namespace that `plugins:` did not provide.
import { discoverPlugins } from '../cli/discover-plugins.js';
import { PluginLoadError, type NodeRegistry } from '../registry.js';
import { loadPluginInto } from './plugin-loader.js';

/** Loads every installed plugin into `registry` if some `ns/name` type's namespace is not registered yet. */
export async function loadInstalledPluginsFor(registry: NodeRegistry, types: string[], baseDir: string): Promise<void> {
  const missing = types.some((type) => type.includes('/') && !registry.hasPlugin(type.slice(0, type.indexOf('/'))));
  if (!missing) return;
  for (const spec of discoverPlugins(baseDir)) {
    try {
      await loadPluginInto(registry, spec, baseDir);
    } catch (e) {
      // Already loaded through `plugins:` (DUPLICATE_NODE_TYPE), or broken: a broken one that a node
      // needs still surfaces as UNKNOWN_NODE_TYPE, and `grpoflow nodes` prints its load error.
      if (!(e instanceof PluginLoadError)) throw e;
    }
  }
}
