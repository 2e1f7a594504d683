import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `grpoflow` imported by the example plugin means the sources here (package.json exports point at dist/).
  resolve: { alias: { grpoflow: new URL('./core/index.ts', import.meta.url).pathname } },
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx', '{core,nodes,engines,plugins}/**/*.spec.ts', '{core,nodes,engines,plugins}/**/*.spec.tsx'],
    exclude: ['**/node_modules/**'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
