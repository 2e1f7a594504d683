#!/usr/bin/env node
// grpoflow is written in TypeScript and run through tsx (no build step): register it, then start the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../core/cli/main.ts');
