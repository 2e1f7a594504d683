// Entry point of a generator worker thread. Project files are TypeScript run through tsx; a worker
// starts with a fresh module loader, so register tsx here (works under the CLI and under vitest alike).
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
