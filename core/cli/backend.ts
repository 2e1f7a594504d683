// Backend selection before a run: `initBackend(name)` from engines/tfjs/backend.ts (written separately;
// the engine runs without it, for graphs that need no model).
import { importOptional } from './optional-import.js';

export interface BackendInfo {
  name: string;
  notes: string[];
}

interface BackendModule {
  initBackend(name: string): Promise<BackendInfo> | BackendInfo;
}

export async function selectBackend(name: string): Promise<BackendInfo> {
  const mod = await importOptional<BackendModule>('../../engines/tfjs/backend.js', import.meta.url);
  if (!mod?.initBackend) return { name: 'none', notes: ['engines/tfjs/backend.ts is not available; no tensor backend was initialised'] };
  return mod.initBackend(name);
}
