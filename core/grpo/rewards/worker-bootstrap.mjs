// Entry point of a reward worker thread. Reward modules may be TypeScript, run through tsx; a worker
// starts with a fresh module loader, so register tsx here (under the CLI and under vitest alike).
// In the published build this file sits beside the compiled .js instead.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const source = new URL('./reward-worker-main.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('./reward-worker-main.js', import.meta.url).href);
