// example/static-prompts: a prompt source from a list in the graph file (handy for smoke tests).
import { defineNode, fromIterableWithBackpressure, ports, type PromptRecord } from 'grpoflow';
import { z } from 'zod';

export const staticPrompts = defineNode({
  type: 'static-prompts',
  version: 1,
  description: 'Emits one prompt per listed question, with backpressure.',
  inputs: {},
  outputs: { prompts: { type: ports.prompts } },
  config: z.strictObject({
    system: z.string().optional(),
    questions: z.array(z.strictObject({ question: z.string().min(1), answer: z.string().optional() })).min(1),
  }),
  run(ctx) {
    const records = ctx.config.questions.map(
      (q, i): PromptRecord => ({
        id: `${ctx.id}-${i}`,
        messages: [...(ctx.config.system ? [{ role: 'system', content: ctx.config.system }] : []), { role: 'user', content: q.question }],
        fields: q.answer === undefined ? {} : { answer: q.answer },
      }),
    );
    return { prompts: fromIterableWithBackpressure(records, () => ctx.outputReady()) };
  },
});
