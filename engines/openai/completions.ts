// Reading `/v1/completions` answers into rows, checked: every choice once, one finite log-prob per token,
// token ids in range and spelled `token_id:N` (vLLM's `return_tokens_as_token_ids`), never more tokens than
// asked, a finish reason that agrees with the tokens. A server that breaks any of these gets an error that
// says which server, which prompt and what was wrong, never a silently wrong row.
import type { FinishReason } from '../../core/engine/interfaces.js';
import { parseTokenIdString, type CompletionChoice, type PromptLogprobEntry } from '../../core/engine/openai-protocol.js';

/** A protocol violation: retrying the same request would not help, so it is not retried. */
export class BadAnswerError extends Error {}

export interface ParsedCompletion {
  ids: number[];
  logprobs: number[];
  finishReason: FinishReason;
}

export interface CompletionExpectations {
  n: number;
  maxTokens: number;
  vocabSize: number;
  eosTokenIds: readonly number[];
}

/** The `n` choices of one answer, in index order, checked against what was asked. */
export function parseCompletionAnswer(answer: unknown, expect: CompletionExpectations): ParsedCompletion[] {
  const choices = (answer as { choices?: unknown } | undefined)?.choices;
  if (!Array.isArray(choices)) throw new BadAnswerError(`the answer has no "choices" list`);
  if (choices.length !== expect.n) throw new BadAnswerError(`asked for n=${expect.n} completions, got ${choices.length}`);
  const byIndex: (ParsedCompletion | undefined)[] = new Array(expect.n);
  choices.forEach((raw, position) => {
    const choice = raw as CompletionChoice;
    const index = choice?.index ?? position;
    if (!Number.isInteger(index) || index < 0 || index >= expect.n) throw new BadAnswerError(`choice ${position} has index ${JSON.stringify(index)}, outside 0..${expect.n - 1}`);
    if (byIndex[index]) throw new BadAnswerError(`choice index ${index} appears twice`);
    byIndex[index] = parseChoice(choice, index, expect);
  });
  return byIndex as ParsedCompletion[];
}

function parseChoice(choice: CompletionChoice, index: number, expect: CompletionExpectations): ParsedCompletion {
  const where = `choice ${index}`;
  const lp = choice.logprobs;
  if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.token_logprobs)) {
    throw new BadAnswerError(`${where} has no logprobs.tokens / logprobs.token_logprobs (the server must honour "logprobs": 0)`);
  }
  if (lp.tokens.length !== lp.token_logprobs.length) {
    throw new BadAnswerError(`${where} has ${lp.tokens.length} tokens but ${lp.token_logprobs.length} log-probs`);
  }
  if (lp.tokens.length > expect.maxTokens) throw new BadAnswerError(`${where} has ${lp.tokens.length} tokens, over max_tokens ${expect.maxTokens}`);
  const ids = lp.tokens.map((token, t) => {
    const id = parseTokenIdString(token);
    if (id === undefined) {
      throw new BadAnswerError(
        `${where} token ${t} is ${JSON.stringify(token)}, not "token_id:N" (the server must honour "return_tokens_as_token_ids": true; for vLLM add --return-tokens-as-token-ids)`,
      );
    }
    if (id >= expect.vocabSize) throw new BadAnswerError(`${where} token ${t} has id ${id}, outside the vocabulary (${expect.vocabSize})`);
    return id;
  });
  const logprobs = lp.token_logprobs.map((value, t) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value > 1e-4) {
      throw new BadAnswerError(`${where} token ${t} has log-prob ${JSON.stringify(value)} (a finite number ≤ 0 is needed)`);
    }
    return value;
  });
  let finishReason: FinishReason;
  if (choice.finish_reason === 'length') {
    if (ids.length !== expect.maxTokens) throw new BadAnswerError(`${where} says finish_reason "length" after ${ids.length} tokens, but max_tokens is ${expect.maxTokens}`);
    finishReason = 'length';
  } else if (choice.finish_reason === 'stop') {
    // vLLM: stop_reason is the stop string, or the stop token id, or null for the model's own eos.
    finishReason = typeof choice.stop_reason === 'string' ? 'stop' : 'eos';
    if (finishReason === 'eos' && (ids.length === 0 || !expect.eosTokenIds.includes(ids[ids.length - 1]))) {
      throw new BadAnswerError(`${where} says it stopped on an eos token, but its last token ${ids.length ? ids[ids.length - 1] : '(none)'} is not one of ${JSON.stringify(expect.eosTokenIds)}`);
    }
  } else {
    throw new BadAnswerError(`${where} has finish_reason ${JSON.stringify(choice.finish_reason)} (expected "stop" or "length")`);
  }
  return { ids, logprobs, finishReason };
}

/**
 * The log-probs of `tokens` at the end of a prompt from vLLM's `prompt_logprobs` (one entry per prompt
 * position, keyed by token id; each position's own token is always among them).
 */
export function completionLogprobsFromPrompt(answer: unknown, tokens: ArrayLike<number>, promptLength: number): number[] {
  const choice = (answer as { choices?: CompletionChoice[] } | undefined)?.choices?.[0];
  const entries = choice?.prompt_logprobs;
  if (!Array.isArray(entries)) {
    throw new BadAnswerError('the answer has no prompt_logprobs: the server cannot score given tokens (vLLM and grpoflow serve can; leave reference_logprobs off and the trainer computes the KL reference itself)');
  }
  if (entries.length !== promptLength + tokens.length) throw new BadAnswerError(`prompt_logprobs has ${entries.length} entries for ${promptLength + tokens.length} prompt tokens`);
  const out: number[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const entry = entries[promptLength + t] as PromptLogprobEntry;
    const value = entry?.[String(tokens[t])]?.logprob;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new BadAnswerError(`prompt_logprobs position ${promptLength + t} has no finite log-prob for token ${tokens[t]}`);
    }
    out.push(value);
  }
  return out;
}
