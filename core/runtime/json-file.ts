// JSON files read with errors that name the file and the line:col of a syntax error (JSON.parse says
// only "Unexpected token } in JSON at position 312", without the file).
import { readFileSync } from 'node:fs';
import { fileError } from './file-error.js';

/** 1-based line and column of character `position` in `text`. */
export function lineCol(text: string, position: number): { line: number; col: number } {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return { line, col: position - before.lastIndexOf('\n') };
}

/** Parses `text` (the content of `file`); a syntax error names `file:line:col`. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /at position (\d+)/.exec(message);
    const where = at ? lineCol(text, Number(at[1])) : /line (\d+) column (\d+)/.exec(message);
    const pos = where ? (Array.isArray(where) ? `${where[1]}:${where[2]}` : `${where.line}:${where.col}`) : undefined;
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
    throw new Error(`${file}${pos ? `:${pos}` : ''}: not valid JSON: ${reason}`);
  }
}

/** Reads and parses a JSON file; a missing file or a syntax error is one message naming the file. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw fileError(error, file);
  }
  return parseJsonText(text, file);
}
