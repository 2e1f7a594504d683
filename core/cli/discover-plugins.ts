// Finds installed plugin packages: node_modules entries (scoped too) whose package.json has the keyword
// `grpoflow-plugin` and a `grpoflow` field. `nodes` and `schema` list them; graph loading (validate, run)
// loads them when a node type needs one (core/graph/installed-plugins.ts): one rule for all.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../graph/plugin-loader.js';

function isPlugin(dir: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; keywords?: string[]; grpoflow?: unknown };
    return pkg.grpoflow && pkg.keywords?.includes('grpoflow-plugin') ? pkg.name : undefined;
  } catch {
    return undefined;
  }
}

/** Every node_modules folder from `dir` up to the file system root: where Node itself resolves packages. */
function nodeModulesAbove(dir: string): string[] {
  const found: string[] = [];
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    found.push(path.join(at, 'node_modules'));
    if (path.dirname(at) === at) return found;
  }
}

export function discoverPlugins(fromDir: string): string[] {
  const found = new Set<string>();
  for (const root of new Set([...nodeModulesAbove(fromDir), ...nodeModulesAbove(PROJECT_ROOT)])) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root)) {
      const dirs = entry.startsWith('@') ? readdirSync(path.join(root, entry)).map((e) => path.join(root, entry, e)) : [path.join(root, entry)];
      for (const dir of dirs) {
        const name = isPlugin(dir);
        if (name) found.add(name);
      }
    }
  }
  return [...found].sort();
}
