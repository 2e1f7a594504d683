// The full reload test (greedy tokens, logits vs transformers) is test/nodes/export-merged.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportMerged, tokenizerFilesFrom } from './export-merged.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'export-merged-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('export.merged', () => {
  it('defaults to bf16 in OUT/merged and rejects other dtypes', () => {
    expect(exportMerged.config.parse({})).toEqual({ path: 'merged', dtype: 'bfloat16' });
    expect(() => exportMerged.config.parse({ dtype: 'int8' })).toThrow();
  });

  it('carries the tokenizer files, with the training chat template replacing the folder’s', () => {
    writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {}}');
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', chat_template: 'old' }));
    writeFileSync(path.join(dir, 'chat_template.jinja'), 'old');
    const files = tokenizerFilesFrom(dir, '{{ messages }}');
    expect(files['chat_template.jinja']).toBe('{{ messages }}');
    expect(JSON.parse(files['tokenizer_config.json'])).toEqual({ eos_token: '</s>' });
    expect(tokenizerFilesFrom(dir, undefined)['chat_template.jinja']).toBe('old');
    expect(() => tokenizerFilesFrom(path.join(dir, 'none'), undefined)).toThrow(`no tokenizer.json in ${path.join(dir, 'none')}`);
  });
});
