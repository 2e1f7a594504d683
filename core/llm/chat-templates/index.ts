// The built-in chat templates, by name.
import { chatml } from './chatml.js';
import { gemma } from './gemma.js';
import { llama31 } from './llama-3.1.js';
import { mistral } from './mistral.js';
import { phi3 } from './phi-3.js';
import { qwen25 } from './qwen-2.5.js';
import type { BuiltinChatTemplate } from './types.js';

export type { BuiltinChatTemplate } from './types.js';

export const builtinChatTemplates: ReadonlyMap<string, BuiltinChatTemplate> = new Map(
  [llama31, chatml, qwen25, mistral, gemma, phi3].map((t) => [t.name, t]),
);
