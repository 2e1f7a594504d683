// Finds installed plugin packages: node_modules entries (scoped too) whose package.json has the keyword
// `grpoflow-plugin` and a `grpoflow` field. Used by `nodes` and `schema`, which have no graph file
// listing plugins.
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

export function discoverPlugins(fromDir: string): string[] {
  const found = new Set<string>();
  for (const root of new Set([path.join(fromDir, 'node_modules'), path.join(PROJECT_ROOT, 'node_modules')])) {
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
