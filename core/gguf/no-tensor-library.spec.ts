// core/gguf must run where no tensor library is installed (a converter on any machine): follow its
// relative imports and check none reaches TensorFlow.js.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  // `import type` is erased when the code runs, so it does not count.
  return [...source.matchAll(/^\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]);
}

describe('core/gguf', () => {
  it('imports no tensor library, directly or through the modules it uses', () => {
    const start = ['export.ts', 'writer.ts', 'quantize.ts', 'quant-mix.ts', 'llama-family.ts', 'tokenizer-metadata.ts', 'format.ts'].map((f) => resolve('core/gguf', f));
    const seen = new Set<string>();
    const external = new Set<string>();
    const queue = [...start];
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) queue.push(join(dirname(file), spec).replace(/\.js$/, '.ts'));
        else external.add(spec);
      }
    }
    expect([...seen].some((f) => f.endsWith('core/llm/tf.ts'))).toBe(false);
    expect([...external].filter((p) => p.includes('tensorflow') || p === 'webgpu')).toEqual([]);
    expect(seen.size).toBeGreaterThan(start.length); // it did follow imports
  });
});
