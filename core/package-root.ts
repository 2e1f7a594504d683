// grpoflow's own package folder, found from this file wherever it runs: the TypeScript sources
// (core/package-root.ts) or the published build (dist/core/package-root.js), which sit at different depths.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'grpoflow') return dir;
    if (path.dirname(dir) === dir) throw new Error(`grpoflow's package.json was not found above ${start}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

/** The version in grpoflow's own package.json. */
export function grpoflowVersion(): string {
  return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
