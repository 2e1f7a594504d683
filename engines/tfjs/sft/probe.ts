// A quick greedy accuracy probe on held-out problems: generate each answer, take the first
// <answer>…</answer>, and count it correct when it equals the reference (the correctness reward's
// cleaning); reported overall and per difficulty level (fields.level), with the share in the format.
import type { ChatTemplate } from '../../../core/llm/chat-template.js';
import { generate } from '../generate.js';
import type { CausalLM } from '../model.js';
import type { Tokenizer } from '../../../core/llm/tokenizer.js';
import { scoreAnswer } from '../../../core/grpo/rewards/correctness.js';
import { REFERENCE_FORMAT_PATTERN } from '../../../core/grpo/rewards/format.js';
import type { PromptRecord } from '../../../core/ports.js';
import type { ProbeOptions, ProbeResult } from '../../../core/engine/model-engine.js';

const FORMAT = new RegExp(REFERENCE_FORMAT_PATTERN, 's');

export type { ProbeResult };

export async function accuracyProbe(
  model: CausalLM,
  tokenizer: Tokenizer,
  template: ChatTemplate,
  records: readonly PromptRecord[],
  options: ProbeOptions,
): Promise<ProbeResult> {
  const field = options.answerField ?? 'answer';
  const requests = records.map((r) => ({
    promptIds: tokenizer.encode(template.render(r.messages, { addGenerationPrompt: true }), { addSpecialTokens: false }),
    maxNewTokens: options.maxNewTokens,
  }));
  const results = await generate(model, requests, { temperature: 0, tokenizer, maxBatch: options.maxBatch ?? 32, signal: options.signal });
  const levels = new Map<string, { correct: number; count: number }>();
  let correct = 0;
  let formatted = 0;
  const samples = records.map((r, i) => {
    const completion = results[i].text ?? '';
    const answer = String(r.fields[field] ?? '');
    const ok = scoreAnswer(completion, answer, { exact: 1, close: 0, wrong: 0 }) === 1;
    correct += ok ? 1 : 0;
    formatted += FORMAT.test(completion) ? 1 : 0;
    const key = r.fields.level === undefined ? 'all' : String(r.fields.level);
    const bucket = levels.get(key) ?? { correct: 0, count: 0 };
    bucket.correct += ok ? 1 : 0;
    bucket.count++;
    levels.set(key, bucket);
    return { id: r.id, completion, answer, correct: ok };
  });
  const n = Math.max(1, records.length);
  const byLevel = Object.fromEntries([...levels].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { accuracy: v.correct / v.count, count: v.count }]));
  return { accuracy: correct / n, formatRate: formatted / n, byLevel, samples };
}
