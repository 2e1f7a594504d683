// The named chat templates: the built-ins (one file each) and those plugins register.
import { chatml } from './chatml.js';
import { gemma } from './gemma.js';
import { llama31 } from './llama-3.1.js';
import { mistral } from './mistral.js';
import { phi3 } from './phi-3.js';
import { qwen25 } from './qwen-2.5.js';
import type { BuiltinChatTemplate } from './types.js';

export type { BuiltinChatTemplate } from './types.js';

const registered = new Map<string, { template: BuiltinChatTemplate; origin: string }>(
  [llama31, chatml, qwen25, mistral, gemma, phi3].map((template) => [template.name, { template, origin: 'core' }]),
);

/** The named chat templates (`chat.template: {name}`): the built-ins and those plugins registered. */
export const builtinChatTemplates = {
  get: (name: string): BuiltinChatTemplate | undefined => registered.get(name)?.template,
  keys: (): string[] => [...registered.keys()],
};

/** Adds a named template (a plugin's, `definePlugin({ chatTemplates: [...] })`); a name already known is an error. */
export function registerChatTemplate(template: BuiltinChatTemplate, origin: string): void {
  const existing = registered.get(template.name);
  if (existing && existing.template !== template) throw new Error(`chat template ${template.name} from ${origin} is already registered by ${existing.origin}`);
  registered.set(template.name, { template, origin });
}

/** Every named template with where it came from. */
export function listChatTemplates(): { template: BuiltinChatTemplate; origin: string }[] {
  return [...registered.values()];
}
