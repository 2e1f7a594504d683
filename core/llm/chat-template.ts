// Chat templates rendered by @huggingface/jinja: a model's own (from its folder) or a named built-in.
import { Template } from '@huggingface/jinja';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinChatTemplates } from './chat-templates/index.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderOptions {
  /** End with the header that opens the assistant's turn (what a prompt for generation needs). */
  addGenerationPrompt?: boolean;
  /** Extra template variables (`date_string`, `tools`, `enable_thinking`, ...), as transformers' `**kwargs`. */
  variables?: Record<string, unknown>;
  /** Override the bos/eos strings the template sees (default: the ones the template was loaded with). */
  bosToken?: string;
  eosToken?: string;
}

export interface ChatTemplateInfo {
  /** Where the template came from: a built-in's name or a file path. */
  name: string;
  bosToken?: string;
  eosToken?: string;
  /** The token that closes an assistant turn, when known (built-ins): generation should stop on it. */
  endOfTurn?: string;
  /** Variables every render sees (a graph's `variables:`, such as `date_string`); render's own win. */
  variables?: Record<string, unknown>;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** tokenizer_config's `chat_template` is a string or a list of `{name, template}` (transformers picks `default`). */
function pickConfigTemplate(value: unknown, where: string, wanted = 'default'): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const found = named.find((t) => t && t.name === wanted);
    if (!found || typeof found.template !== 'string') {
      const names = named.map((t) => String(t?.name)).join(', ');
      throw new Error(`${where}: chat_template has no template named "${wanted}" (it has: ${names})`);
    }
    return found.template;
  }
  throw new Error(`${where}: chat_template must be a string or a list of {name, template}`);
}

export class ChatTemplate {
  readonly info: ChatTemplateInfo;
  readonly source: string;
  private readonly compiled: Template;

  constructor(source: string, info: ChatTemplateInfo) {
    this.source = source;
    this.info = info;
    try {
      this.compiled = new Template(source);
    } catch (err) {
      throw new Error(`chat template ${info.name} does not parse: ${(err as Error).message}`);
    }
  }

  /**
   * A model folder's template: `chat_template.jinja` (transformers v5 layout) or `tokenizer_config.json`'s
   * `chat_template` (v4 layout; a string, or a list of named templates of which `templateName` is used).
   * bos/eos strings come from tokenizer_config.json.
   */
  static async fromDir(dir: string, options: { templateName?: string } = {}): Promise<ChatTemplate> {
    const configPath = join(dir, 'tokenizer_config.json');
    let config: Record<string, unknown> = {};
    if (existsSync(configPath)) {
      try {
        config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`${configPath} is not valid JSON: ${(err as Error).message}`);
      }
    }
    const tokens = { bosToken: tokenContent(config.bos_token), eosToken: tokenContent(config.eos_token) };
    const jinjaPath = join(dir, 'chat_template.jinja');
    if (existsSync(jinjaPath)) {
      return new ChatTemplate(readFileSync(jinjaPath, 'utf8'), { name: jinjaPath, ...tokens });
    }
    if (config.chat_template !== undefined) {
      return new ChatTemplate(pickConfigTemplate(config.chat_template, configPath, options.templateName), {
        name: `${configPath}#chat_template`,
        ...tokens,
      });
    }
    throw new Error(
      `${dir} has no chat template (neither chat_template.jinja nor a chat_template in tokenizer_config.json); ` +
        `pick a built-in one: ${ChatTemplate.builtinNames().join(', ')}`,
    );
  }

  /** A built-in template by name (`llama-3.1`, `chatml`, `qwen-2.5`, `mistral`, `gemma`, `phi-3`). */
  static builtin(name: string, tokens: { bosToken?: string; eosToken?: string } = {}): ChatTemplate {
    const found = builtinChatTemplates.get(name);
    if (!found) {
      throw new Error(`unknown chat template "${name}"; built-in ones: ${ChatTemplate.builtinNames().join(', ')}`);
    }
    return new ChatTemplate(found.template, { name: found.name, endOfTurn: found.endOfTurn, ...tokens });
  }

  static builtinNames(): string[] {
    return [...builtinChatTemplates.keys()];
  }

  /** The same template with default variables added (they override ones set before). */
  withVariables(variables: Record<string, unknown>): ChatTemplate {
    return new ChatTemplate(this.source, { ...this.info, variables: { ...this.info.variables, ...variables } });
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new Error(`chat template ${this.info.name}: messages must be a non-empty list`);
    }
    messages.forEach((m, i) => {
      if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new Error(`chat template ${this.info.name}: message ${i} needs a string "role" and "content"`);
      }
    });
    const context: Record<string, unknown> = {
      ...this.info.variables,
      ...options.variables,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: options.bosToken ?? this.info.bosToken ?? '',
      eos_token: options.eosToken ?? this.info.eosToken ?? '',
    };
    // @huggingface/jinja provides the globals transformers passes: `raise_exception(message)` (its error
    // lands in the catch below, message intact) and `strftime_now(format)` (current local time). Globals
    // cannot be redeclared, so a fixed date goes in through `date_string`, as with transformers.
    try {
      return this.compiled.render(context);
    } catch (err) {
      throw new Error(`chat template ${this.info.name} failed to render: ${(err as Error).message}`);
    }
  }
}
