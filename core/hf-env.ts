// The Hugging Face environment as huggingface_hub reads it, shared by models and datasets: the home
// folder, offline mode, and the access token (HF_TOKEN, else the file `huggingface-cli login` wrote).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, sep } from 'node:path';

/** HF_HOME, else XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function huggingFaceHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

/** HF_HUB_OFFLINE as huggingface_hub reads a boolean: 1, true, yes or on (any case). */
export function huggingFaceOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes|on)$/i.test((env.HF_HUB_OFFLINE ?? '').trim());
}

/**
 * The access token: HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the file that
 * `huggingface-cli login` / `hf auth login` saved (HF_TOKEN_PATH, default HF_HOME/token).
 */
export function huggingFaceToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = (env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN)?.trim();
  if (fromEnv) return fromEnv;
  const file = env.HF_TOKEN_PATH ?? join(huggingFaceHome(env), 'token');
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

/**
 * The Hub id of a folder inside a Hugging Face cache (`.../models--ORG--NAME/snapshots/COMMIT[/...]`),
 * or undefined for any other folder. Hub repo names cannot contain `--`, so the split is unambiguous.
 */
export function hubIdOfCachedFolder(dir: string): string | undefined {
  const parts = dir.split(sep);
  const at = parts.lastIndexOf('snapshots');
  const match = at > 0 ? /^models--([^-].*?)--(.+)$/.exec(parts[at - 1]) : null;
  return match && parts[at + 1] ? `${match[1]}/${match[2]}` : undefined;
}
