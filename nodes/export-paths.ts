// Where export nodes write: a path relative to the run's --out folder unless absolute.
import { isAbsolute, join } from 'node:path';

export function outputPath(outDir: string, path: string): string {
  return isAbsolute(path) ? path : join(outDir, path);
}
