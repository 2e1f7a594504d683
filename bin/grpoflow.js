#!/usr/bin/env node
// In this repository grpoflow runs its TypeScript sources through tsx (no build step); an installed
// package ships only the compiled dist/. tsx is registered either way: graphs may name TypeScript
// plugins and reward modules.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const source = new URL('../core/cli/main.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/core/cli/main.js', import.meta.url).href);
