// Imports a module that another part of the project may not provide yet (the backend selector, the
// terminal UI). Absence of that module itself gives undefined; any other error (a bug inside it) throws.
export async function importOptional<T>(specifier: string, fromUrl: string): Promise<T | undefined> {
  const url = new URL(specifier, fromUrl);
  try {
    return (await import(url.href)) as T;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    const missingSelf =
      (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') &&
      (e.message ?? '').includes(url.pathname.replace(/\.js$/, ''));
    if (missingSelf) return undefined;
    throw error;
  }
}
