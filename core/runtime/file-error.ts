// File-system failures as one sentence that names the path and, where known, the setting that chose it
// (`--out`, `train.grpo output_dir`), instead of Node's bare `EEXIST: file already exists, mkdir ...` or
// an `ENOSPC` that names no file.
const REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EEXIST: 'a file is in the way (a folder is needed there)',
  ENOTDIR: 'a file is in the way (a folder is needed there)',
  EISDIR: 'is a folder, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
};

/** A file error with the path and the setting in its message; `code` keeps Node's error code. */
export class FileError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FileError';
    this.code = code;
  }
}

/** Wraps `error` (from fs) so its message names `target` and `setting`; other errors pass unchanged. */
export function fileError(error: unknown, target: string, setting?: string): Error {
  if (error instanceof FileError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return error instanceof Error ? error : new Error(String(error));
  const reason = REASONS[code] ?? (error as Error).message;
  const where = setting ? `${setting} ${target}` : target;
  return new FileError(`${where}: ${reason} (${code})`, code, { cause: error });
}

/** Runs `fn`, rethrowing a file error as one that names `target` and `setting`. */
export async function withFileErrors<T>(target: string, setting: string | undefined, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fileError(error, target, setting);
  }
}
