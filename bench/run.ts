// `npm run bench -- NAME [args]` runs bench/NAME.ts: its exported `run()`.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'shapes.ts')
  .map((f) => f.slice(0, -3));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${available.join(', ')})`);
  process.exit(2);
}
const mod = (await import(`./${name}.js`)) as { run?: (log?: (line: string) => void) => Promise<unknown> };
if (typeof mod.run !== 'function') {
  console.error(`bench/${name}.ts does not export run()`);
  process.exit(2);
}
try {
  await mod.run();
} catch (err) {
  console.error(`bench ${name}: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
