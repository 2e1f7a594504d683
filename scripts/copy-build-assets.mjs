// Part of `npm run build`: tsc compiles only .ts/.tsx, so copy the files the compiled code reads beside
// itself at run time (worker bootstraps, chat templates) into dist/ at the same relative paths.
import { cpSync, readdirSync } from 'node:fs';
import path from 'node:path';

const SOURCE_FOLDERS = ['core', 'nodes', 'engines'];
const RUNTIME_ASSET = /\.(mjs|jinja)$/;

for (const folder of SOURCE_FOLDERS) {
  for (const file of readdirSync(folder, { recursive: true, encoding: 'utf8' })) {
    if (RUNTIME_ASSET.test(file)) cpSync(path.join(folder, file), path.join('dist', folder, file));
  }
}
