// Entry point of a rollout-engine worker thread. Project files are TypeScript run through tsx; a worker
// starts with a fresh module loader, so register tsx here (works under the CLI and under vitest alike,
// and lets a plugin's engine module be TypeScript too). In the published build this file sits beside the
// compiled .js instead.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const source = new URL('./engine-worker-main.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('./engine-worker-main.js', import.meta.url).href);
