// `grpoflow generate`: render a chat with the model's (or a built-in) template and generate a completion.
import { existsSync, readFileSync } from 'node:fs';
import type { ChatMessage } from '../../ports.js';
import { ChatTemplate } from '../../llm/chat-template.js';
import { Tokenizer } from '../../llm/tokenizer.js';
import { readModelConfig } from '../../llm/config.js';
import { positionsOverflow } from '../../llm/prompt-fits.js';
import { isHubId, resolveModelDir } from '../../llm/hub.js';
import { parseOptions, requireDir, UsageError, type CommandIO } from '../command.js';

export type { CommandIO } from '../command.js';

export const name = 'generate';
export const summary = 'Generate a completion for a prompt or a conversation with a local or Hub model';
export const usage = `grpoflow generate --model DIR|ORG/NAME [--adapter DIR|ORG/NAME] (--prompt TEXT | --messages FILE.json)
    [--system TEXT] [--chat-template NAME] [--chat-template-kwargs JSON] [--max-new-tokens N]
    [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--repetition-penalty R] [--seed S]
    [--backend auto|tensorflow|webgpu|wasm|cpu] [--json]

  --model, --adapter     a folder, or a Hub id found in the Hugging Face cache (else downloaded unless
                         HF_HUB_OFFLINE is set; HF_TOKEN or the token of \`huggingface-cli login\` is used)
  --messages FILE.json   a JSON list of {"role", "content"} messages
  --chat-template NAME   replace the model's template with a built-in one (${ChatTemplate.builtinNames().join(', ')})
  --chat-template-kwargs JSON   extra template variables, e.g. '{"date_string": "26 Jul 2024"}'
  --temperature T        0 is greedy (default 1)
  --max-new-tokens N     default 256
  --json                 print one JSON object: {"rendered", "prompt_ids", "completion_ids",
                         "completion_logprobs", "text"}; completion_logprobs[i] is the model's log-prob of
                         completion_ids[i] under its unmodified logits`;

function numberOption(value: string | undefined, flag: string, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag} must be ${rule}, got "${value}"`);
  return n;
}

function readMessages(path: string): ChatMessage[] {
  if (!existsSync(path)) throw new UsageError(`--messages file ${path} does not exist`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--messages file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new UsageError(`--messages file ${path} must hold a non-empty JSON list of {"role", "content"}`);
  parsed.forEach((m, i) => {
    if (!m || typeof m !== 'object' || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new UsageError(`--messages file ${path}: message ${i} needs a string "role" and "content"`);
    }
  });
  return parsed as ChatMessage[];
}

function parseKwargs(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--chat-template-kwargs is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--chat-template-kwargs must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** A folder for --model / --adapter: the folder given, or a Hub id's snapshot (cache, else downloaded), as graphs take them. */
async function modelFolder(ref: string, flag: 'model' | 'adapter'): Promise<string> {
  if (!existsSync(ref) && isHubId(ref)) return resolveModelDir(ref, { kind: flag });
  requireDir(ref, flag);
  return ref;
}

export async function runGenerate(argv: string[], io: CommandIO): Promise<number> {
  try {
    const o = parseOptions(argv, {
      model: { type: 'string' },
      adapter: { type: 'string' },
      prompt: { type: 'string' },
      messages: { type: 'string' },
      system: { type: 'string' },
      'chat-template': { type: 'string' },
      'chat-template-kwargs': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      'min-p': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (o.help) {
      io.out(`${usage}\n`);
      return 0;
    }
    if (!o.model) throw new UsageError('--model DIR is required');
    if ((o.prompt === undefined) === (o.messages === undefined)) throw new UsageError('give exactly one of --prompt TEXT or --messages FILE.json');
    const maxNewTokens = numberOption(o['max-new-tokens'], 'max-new-tokens', 256, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0');
    const sampling = {
      temperature: numberOption(o.temperature, 'temperature', 1, (n) => n >= 0, 'a number ≥ 0'),
      topP: numberOption(o['top-p'], 'top-p', 1, (n) => n > 0 && n <= 1, 'in (0, 1]'),
      topK: numberOption(o['top-k'], 'top-k', 0, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0'),
      minP: numberOption(o['min-p'], 'min-p', 0, (n) => n >= 0 && n <= 1, 'in [0, 1]'),
      repetitionPenalty: numberOption(o['repetition-penalty'], 'repetition-penalty', 1, (n) => n > 0, 'a number > 0'),
    };
    const seed = numberOption(o.seed, 'seed', 0, (n) => Number.isInteger(n), 'a whole number');
    const variables = parseKwargs(o['chat-template-kwargs']);
    if (o['chat-template'] !== undefined && !ChatTemplate.builtinNames().includes(o['chat-template'])) {
      throw new UsageError(`unknown chat template "${o['chat-template']}"; built-in ones: ${ChatTemplate.builtinNames().join(', ')}`);
    }
    let messages: ChatMessage[] = o.messages !== undefined ? readMessages(o.messages) : [{ role: 'user', content: o.prompt! }];
    if (o.system !== undefined) {
      if (messages[0].role === 'system') throw new UsageError(`--system given but ${o.messages} already starts with a system message`);
      messages = [{ role: 'system', content: o.system }, ...messages];
    }

    const modelDir = await modelFolder(o.model, 'model');
    const adapterDir = o.adapter === undefined ? undefined : await modelFolder(o.adapter, 'adapter');
    const { initBackend } = await import('../../../engines/tfjs/backend.js');
    await initBackend((o.backend ?? 'auto') as Parameters<typeof initBackend>[0], (line) => io.err(`${line}\n`));

    const tokenizer = await Tokenizer.fromDir(modelDir);
    const template = o['chat-template']
      ? ChatTemplate.builtin(o['chat-template'], { bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken })
      : await ChatTemplate.fromDir(modelDir);
    const rendered = template.render(messages, { addGenerationPrompt: true, variables });
    // The rendering already holds its special tokens (bos, headers): add none, as apply_chat_template does.
    const promptIds = tokenizer.encode(rendered, { addSpecialTokens: false });
    const overflow = positionsOverflow(promptIds.length, maxNewTokens, readModelConfig(modelDir).maxPositionEmbeddings);
    if (overflow) throw new Error(`the prompt does not fit the model: ${overflow}; shorten the prompt or lower --max-new-tokens`);

    const { loadModel } = await import('../../../engines/tfjs/model-loader.js');
    const model = await loadModel(modelDir);
    if (adapterDir !== undefined) {
      const { loadPeftAdapter } = await import('../../../engines/tfjs/lora.js');
      await loadPeftAdapter(model, adapterDir);
    }
    const eos = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
    // A replacement template's end-of-turn token ends the reply even when the checkpoint's eos differs.
    const endOfTurn = template.info.endOfTurn === undefined ? undefined : tokenizer.tokenToId(template.info.endOfTurn);
    if (endOfTurn !== undefined) eos.add(endOfTurn);

    const { generate: generateTokens } = await import('../../../engines/tfjs/generate.js');
    const [result] = await generateTokens(model, [{ promptIds, maxNewTokens }], {
      ...sampling,
      seed,
      maxBatch: 1,
      eosTokenIds: [...eos],
      tokenizer,
    });
    if (o.json) {
      io.out(
        `${JSON.stringify({
          rendered,
          prompt_ids: promptIds,
          completion_ids: result.ids,
          completion_logprobs: result.logprobs,
          text: result.text,
        })}\n`,
      );
    } else {
      io.out(`${result.text}\n`);
    }
    return 0;
  } catch (err) {
    io.err(`grpoflow generate: ${(err as Error).message.split('\n')[0]}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

export function run(argv: string[]): Promise<number> {
  return runGenerate(argv, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
}
