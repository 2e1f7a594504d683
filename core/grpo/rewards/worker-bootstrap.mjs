// Entry point of a reward worker thread. Reward modules may be TypeScript, run through tsx; a worker
// starts with a fresh module loader, so register tsx here (under the CLI and under vitest alike).
import { register } from 'tsx/esm/api';

register();
await import('./reward-worker-main.ts');
