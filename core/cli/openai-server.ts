// The HTTP side of `grpoflow serve`: vLLM's OpenAI-compatible API over our rollout engines. One engine per
// served model name: the base model, and one per LoRA adapter loaded (at launch or through vLLM's
// `POST /v1/load_lora_adapter`), selected by the request's `model`. Engine-neutral: how an engine is made
// for an adapter is the caller's (the composition root knows the engine).
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { FinishReason, RolloutEngine } from '../engine/interfaces.js';
import {
  completionRequestSchema,
  loadLoraRequestSchema,
  tokenIdString,
  unloadLoraRequestSchema,
  type CompletionChoice,
  type CompletionResponse,
  type ModelCard,
  type PromptLogprobEntry,
} from '../engine/openai-protocol.js';
import { EngineClosedError, EngineQueue } from './engine-queue.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import { positionsOverflow } from '../llm/prompt-fits.js';

interface ServedAdapter {
  queue: EngineQueue;
  path: string;
}

export interface OpenAIServerOptions {
  /** The base model's name in `/v1/models` and requests. */
  modelName: string;
  baseEngine: RolloutEngine;
  tokenizer: Tokenizer;
  /** Ids that end a completion (the model's eos and the template's end of turn), besides a request's stop_token_ids. */
  eosTokenIds: number[];
  maxPositionEmbeddings: number;
  /** Most completions (or scored rows) in one merged engine call. */
  maxBatch: number;
  /** An engine sampling with the PEFT adapter in `path` (its own copy; closed when unloaded). */
  loadAdapter(path: string): Promise<RolloutEngine>;
  log?: (line: string) => void;
}

/** A client mistake (HTTP 400/404), answered with vLLM's error JSON. */
class RequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export class OpenAIServer {
  private readonly adapters = new Map<string, ServedAdapter>();
  private readonly created = Math.floor(Date.now() / 1000);
  private http: HttpServer | undefined;
  private readonly base: EngineQueue;

  constructor(private readonly options: OpenAIServerOptions) {
    this.base = new EngineQueue(options.baseEngine, options.maxBatch);
  }

  async loadAdapter(name: string, path: string): Promise<void> {
    if (name === this.options.modelName || this.adapters.has(name)) throw new RequestError(`The lora adapter '${name}' has already been loaded.`);
    let engine: RolloutEngine;
    try {
      engine = await this.options.loadAdapter(path);
    } catch (err) {
      throw new RequestError(`loading LoRA adapter '${name}' from ${path}: ${(err as Error).message}`);
    }
    if (this.adapters.has(name)) {
      await engine.close();
      throw new RequestError(`The lora adapter '${name}' has already been loaded.`);
    }
    this.adapters.set(name, { queue: new EngineQueue(engine, this.options.maxBatch), path });
  }

  async unloadAdapter(name: string): Promise<void> {
    const adapter = this.adapters.get(name);
    if (!adapter) throw new RequestError(`The lora adapter '${name}' cannot be found.`, 404);
    this.adapters.delete(name);
    // A merged call already running on it finishes first; waiting requests get HTTP 404.
    await adapter.queue.close();
  }

  listen(port: number, host: string): Promise<{ port: number; host: string }> {
    const http = createServer((req, res) => void this.handle(req, res));
    // Sampling a long batch can take minutes: no socket timeout of our own.
    http.requestTimeout = 0;
    // The event loop is held while an engine computes (tfjs is synchronous): a short headers timeout would
    // drop connections whose request arrived during a long call (seen as ECONNRESET under load).
    http.headersTimeout = 600_000;
    // Longer than clients keep idle connections, so a reused connection is not closed under a request.
    http.keepAliveTimeout = 120_000;
    this.http = http;
    return new Promise((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        const address = http.address();
        resolve({ port: typeof address === 'object' && address ? address.port : port, host });
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    this.http?.closeAllConnections();
    await Promise.all([...this.adapters.values()].map((a) => a.queue.close()));
    this.adapters.clear();
    await this.base.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A client that goes away aborts its sampling.
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new Error('the client closed the connection'));
    });
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    try {
      if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) return send(res, 200, { object: 'list', data: this.models() });
      if (req.method === 'GET' && path === '/health') return send(res, 200, {});
      if (req.method !== 'POST') throw new RequestError(`${req.method} ${path} is not served (GET /v1/models, POST /v1/completions, /v1/load_lora_adapter, /v1/unload_lora_adapter)`, 404);
      const body = await readJson(req);
      if (path === '/v1/completions') return send(res, 200, await this.complete(body, controller.signal));
      if (path === '/v1/load_lora_adapter') {
        const r = parse(loadLoraRequestSchema, body);
        await this.loadAdapter(r.lora_name, r.lora_path);
        this.options.log?.(`loaded LoRA adapter ${r.lora_name} from ${r.lora_path}`);
        return sendText(res, 200, `Success: LoRA adapter '${r.lora_name}' added successfully.`);
      }
      if (path === '/v1/unload_lora_adapter') {
        const r = parse(unloadLoraRequestSchema, body);
        await this.unloadAdapter(r.lora_name);
        return sendText(res, 200, `Success: LoRA adapter '${r.lora_name}' removed successfully.`);
      }
      throw new RequestError(`POST ${path} is not served`, 404);
    } catch (err) {
      if (res.headersSent || controller.signal.aborted) return;
      const status = err instanceof RequestError ? err.status : err instanceof EngineClosedError ? 404 : 500;
      if (status === 500) this.options.log?.(`error: ${(err as Error).message}`);
      send(res, status, { error: { message: (err as Error).message, type: status === 404 ? 'NotFoundError' : status === 400 ? 'BadRequestError' : 'InternalServerError', code: status } });
    }
  }

  private models(): ModelCard[] {
    const card = (id: string, parent: string | null, root: string): ModelCard => ({ id, object: 'model', created: this.created, owned_by: 'grpoflow', parent, root });
    return [card(this.options.modelName, null, this.options.modelName), ...[...this.adapters].map(([name, a]) => card(name, this.options.modelName, a.path))];
  }

  private queueFor(model: string): EngineQueue {
    if (model === this.options.modelName) return this.base;
    const adapter = this.adapters.get(model);
    if (!adapter) throw new RequestError(`The model \`${model}\` does not exist.`, 404);
    return adapter.queue;
  }

  private async complete(body: unknown, signal: AbortSignal): Promise<CompletionResponse> {
    const r = parse(completionRequestSchema, body);
    if (r.stream) throw new RequestError('stream: true is not supported (ask without streaming)');
    if ((r.logprobs ?? 0) > 0) throw new RequestError('logprobs > 0 is not supported: only the sampled token\'s log-prob (logprobs: 0)');
    if ((r.prompt_logprobs ?? 0) > 0) throw new RequestError('prompt_logprobs > 0 is not supported: only the prompt token\'s own log-prob (prompt_logprobs: 0)');
    if (r.echo) throw new RequestError('echo is not supported; use prompt_logprobs: 0 to score a prompt');
    const queue = this.queueFor(r.model);
    const { tokenizer } = this.options;
    const promptIds = typeof r.prompt === 'string' ? tokenizer.encode(r.prompt) : r.prompt;
    const bad = promptIds.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) throw new RequestError(`prompt token id ${bad} is outside the vocabulary (${tokenizer.vocabSize})`);
    const maxTokens = r.max_tokens ?? 16;
    const overflow = positionsOverflow(promptIds.length, maxTokens, this.options.maxPositionEmbeddings);
    if (overflow) throw new RequestError(`the prompt does not fit the model: ${overflow}`);
    const temperature = r.temperature ?? 1;
    const stops = typeof r.stop === 'string' ? [r.stop] : (r.stop ?? []);
    const stopTokenIds = r.stop_token_ids ?? [];
    const eos = [...new Set([...this.options.eosTokenIds, ...stopTokenIds])];
    const asIds = r.return_tokens_as_token_ids === true;

    const sampled =
      maxTokens > 0
        ? await queue.sample(
            promptIds,
            r.n,
            {
              maxNewTokens: maxTokens,
              temperature,
              logprobTemperature: temperature > 0 ? temperature : 1,
              topP: r.top_p ?? 1,
              topK: r.top_k && r.top_k > 0 ? r.top_k : 0,
              minP: r.min_p ?? 0,
              repetitionPenalty: r.repetition_penalty ?? 1,
              eosTokenIds: eos,
              stop: stops.length > 0 ? stops : undefined,
            },
            r.seed ?? Math.floor(Math.random() * 2 ** 31),
            signal,
          )
        : undefined;

    let promptLogprobs: PromptLogprobEntry[] | undefined;
    if (r.prompt_logprobs != null) {
      // Position t's log-prob given positions < t, at the request's temperature; the first has none.
      const values = promptIds.length > 1 ? await queue.score(promptIds.slice(0, 1), promptIds.slice(1), temperature > 0 ? temperature : 1, signal) : new Float32Array(0);
      promptLogprobs = [null, ...Array.from(values, (logprob, t) => ({ [String(promptIds[t + 1])]: { logprob, rank: null, decoded_token: asIds ? tokenIdString(promptIds[t + 1]) : tokenizer.decode([promptIds[t + 1]]) } }))];
    }

    const choices: CompletionChoice[] = [];
    let completionTokens = 0;
    for (let i = 0; i < r.n; i++) {
      const ids = sampled ? sampled.ids[i] : [];
      const logprobs = sampled ? sampled.logprobs[i] : [];
      const reason: FinishReason = sampled ? sampled.finishReasons[i] : 'length';
      completionTokens += ids.length;
      const pieces = ids.map((id) => tokenizer.decode([id]));
      const offsets: number[] = [];
      pieces.reduce((at, piece) => (offsets.push(at), at + piece.length), 0);
      choices.push({
        index: i,
        text: sampled ? sampled.texts[i] : '',
        logprobs:
          r.logprobs != null
            ? { tokens: asIds ? ids.map(tokenIdString) : pieces, token_logprobs: logprobs, top_logprobs: null, text_offset: offsets }
            : null,
        finish_reason: reason === 'length' ? 'length' : 'stop',
        stop_reason: reason === 'stop' ? stopStringOf(tokenizer.decode(ids, { skipSpecialTokens: true }), stops) : reason === 'eos' && stopTokenIds.includes(ids[ids.length - 1]) ? ids[ids.length - 1] : null,
        ...(promptLogprobs ? { prompt_logprobs: promptLogprobs } : {}),
      });
    }
    return {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: r.model,
      choices,
      usage: { prompt_tokens: promptIds.length, completion_tokens: completionTokens, total_tokens: promptIds.length + completionTokens },
    };
  }
}

/** The stop string that occurs first in `text` (the one that ended it). */
function stopStringOf(text: string, stops: string[]): string | null {
  let best: string | null = null;
  let at = Infinity;
  for (const stop of stops) {
    const i = text.indexOf(stop);
    if (i >= 0 && i < at) [best, at] = [stop, i];
  }
  return best;
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new RequestError(`${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new RequestError(`the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestError(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
