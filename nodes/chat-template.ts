// chat.template: the chat template prompts are rendered with — the model folder's own, a built-in by name
// (replacing the model's, as Unsloth's get_chat_template does), or a .jinja file — plus default variables.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { of } from 'rxjs';
import { z } from 'zod';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { builtinChatTemplates } from '../core/llm/chat-templates/index.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

export const chatTemplateConfig = z
  .strictObject({
    name: z
      .string()
      .optional()
      .describe(`A built-in template replacing the model's: ${[...builtinChatTemplates.keys()].join(', ')}.`),
    path: z.string().optional().describe('A .jinja template file (relative to the graph file).'),
    template_name: z.string().optional().describe("Which of the model's named templates (tokenizer_config's list form) to use; default `default`."),
    variables: z.record(z.string(), z.unknown()).default({}).describe('Variables every render sees, e.g. {date_string: "26 Jul 2024"}.'),
  })
  .refine((c) => !(c.name !== undefined && c.path !== undefined), { message: 'give at most one of "name" or "path"' });

export const chatTemplate = defineNode({
  type: 'chat.template',
  version: 1,
  description: "The chat template for rendering prompts: the model folder's own, a built-in by name, or a .jinja file.",
  inputs: {
    model: { type: ports.model, optional: true, description: "Its folder holds the model's own template (needed when neither name nor path is given)." },
    tokenizer: { type: ports.tokenizer, optional: true, description: 'Supplies the bos/eos strings for a built-in or file template.' },
  },
  outputs: { template: { type: ports.chatTemplate } },
  config: chatTemplateConfig,
  async run(ctx, inputs) {
    const c = ctx.config;
    const tokens = { bosToken: inputs.tokenizer?.bosToken, eosToken: inputs.tokenizer?.eosToken };
    let template: ChatTemplate;
    if (c.name !== undefined) {
      template = ChatTemplate.builtin(c.name, tokens);
    } else if (c.path !== undefined) {
      const file = resolve(ctx.baseDir, c.path);
      if (!existsSync(file)) throw new Error(`chat.template ${ctx.id}: template file ${file} not found`);
      template = new ChatTemplate(readFileSync(file, 'utf8'), { name: file, ...tokens });
    } else {
      const dir = inputs.model?.dir;
      if (dir === undefined) {
        throw new Error(
          `chat.template ${ctx.id}: no template source: connect \`model\` (a model loaded from a folder) or set \`name\` (${ChatTemplate.builtinNames().join(', ')}) or \`path\``,
        );
      }
      template = await ChatTemplate.fromDir(dir, { templateName: c.template_name });
    }
    if (Object.keys(c.variables).length > 0) template = template.withVariables(c.variables);
    ctx.metrics.event('info', `chat template ${template.info.name}`);
    return { template: of(template) };
  },
});
