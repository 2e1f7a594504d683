// Errors about dataset contents name the file and row, so a user can open the file at the bad line.

/** A problem with one dataset row (or the file as a whole, when `row` is absent). */
export class DatasetError extends Error {
  constructor(
    readonly source: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${message}`, options);
    this.name = 'DatasetError';
  }
}

/** `file:row`, the `source` of a DatasetRow. Rows are 1-based (the line number for text formats). */
export function rowSource(file: string, row: number): string {
  return `${file}:${row}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
