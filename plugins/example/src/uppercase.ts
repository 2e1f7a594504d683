// example/uppercase: a stream transform that upper-cases the user messages of each prompt.
import { defineNode, ports } from 'grpoflow';
import { map } from 'rxjs';
import { z } from 'zod';

export const uppercase = defineNode({
  type: 'uppercase',
  version: 1,
  description: 'Upper-cases the content of messages with the given roles.',
  inputs: { prompts: { type: ports.prompts } },
  outputs: { prompts: { type: ports.prompts } },
  config: z.strictObject({ roles: z.array(z.string()).default(['user']) }),
  run(ctx, inputs) {
    const roles = new Set(ctx.config.roles);
    return {
      prompts: inputs.prompts.pipe(
        map((p) => ({ ...p, messages: p.messages.map((m) => (roles.has(m.role) ? { ...m, content: m.content.toUpperCase() } : m)) })),
      ),
    };
  },
});
