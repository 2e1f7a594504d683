// The `openai` rollout engine: sampling on a fleet of OpenAI-compatible servers (vLLM, `grpoflow serve`,
// anything that answers vLLM's `/v1/completions` with per-token log-probs and token ids). Prompts are
// tokenized here with our tokenizer and chat template and sent as token ids, so the servers sample from
// exactly the trainer's prompts; one request per prompt asks for its n completions. Policy weights travel
// as PEFT adapters written to a folder the servers can read, loaded under a versioned name through
// vLLM's runtime LoRA endpoints; the old version is unloaded once the new one is in.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PolicyWeights, RolloutEngine, SampledRows, SampleHooks, SamplingOptions, ScoreOptions } from '../../core/engine/interfaces.js';
import type { CompletionRequest } from '../../core/engine/openai-protocol.js';
import { completionOf, promptOf, rowCount, rowsOf, type Rows, type TokenLogprobs } from '../../core/engine/rows.js';
import { writePeftAdapter } from '../../core/llm/peft-adapter.js';
import type { PeftLoraSettings } from '../../core/llm/peft-config.js';
import type { Tokenizer } from '../../core/llm/tokenizer.js';
import { Rng } from '../../core/rng.js';
import { completionLogprobsFromPrompt, parseCompletionAnswer } from './completions.js';
import { fanOutSignal, Server, ServerError, ServerPool, type ServerPoolOptions } from './server-pool.js';

export interface OpenAIEngineOptions extends Omit<ServerPoolOptions, 'onRetry'> {
  /** The base model's name on the servers; default the first model `/v1/models` lists without a parent. */
  model?: string;
  /** Where adapters are written (a folder every server can read). */
  adapterDir: string;
  /** Remove adapterDir itself on close (a folder made for this run). */
  removeAdapterDir?: boolean;
  /** The same folder as the servers see it, when it is mounted elsewhere there. Default adapterDir. */
  adapterDirOnServer?: string;
  /** Prefix of the versioned adapter names (`PREFIX-vN`). */
  adapterName: string;
  /** The policy's LoRA settings (adapter_config.json); undefined for a policy without an adapter. */
  lora?: PeftLoraSettings;
  /** Recorded as the adapter's base_model_name_or_path. */
  baseModelPath?: string;
  vocabSize: number;
  onWarning?: (message: string) => void;
}

interface Adapter {
  name: string;
  /** The folder as the servers read it. */
  path: string;
  /** The folder as we wrote it. */
  localPath: string;
}

export class OpenAIRolloutEngine implements RolloutEngine {
  readonly name = 'openai';
  readonly pool: ServerPool;
  private version = 0;
  private adapter: Adapter | undefined;
  private baseModel: string | undefined;
  /** Adapter folders written, oldest first (the last two are kept: a lagging server may still be loading one). */
  private written: string[] = [];
  /** setWeights and sample run one at a time, in the order made (the scheduler posts both without awaiting). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly options: OpenAIEngineOptions,
  ) {
    this.pool = new ServerPool({ ...options, onRetry: options.onWarning });
    this.baseModel = options.model;
  }

  get policyVersion(): number {
    return this.version;
  }

  /** Asks each server for its models once (a health check) and learns the base model's name. */
  async connect(signal?: AbortSignal): Promise<void> {
    const listed = await this.pool.request(
      'GET /v1/models',
      async (server, s) => (await this.pool.call(server, '/v1/models', undefined, s)) as { data?: { id: string; parent?: string | null }[] },
      signal,
    );
    const models = listed?.data ?? [];
    if (this.baseModel === undefined) {
      const base = models.find((m) => !m.parent);
      if (!base) throw new Error(`GET /v1/models lists no base model (got ${JSON.stringify(models.map((m) => m.id))}); give engine_options.model`);
      this.baseModel = base.id;
    }
  }

  setWeights(policy: PolicyWeights): Promise<void> {
    return this.inTurn(() => this.load(policy));
  }

  sample(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal?: AbortSignal, hooks: SampleHooks = {}): Promise<SampledRows> {
    return this.inTurn(() => this.sampleNow(prompts, n, options, signal, hooks));
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async load(policy: PolicyWeights): Promise<void> {
    const names = Object.keys(policy.weights);
    if (names.length === 0) {
      this.version = policy.version;
      return;
    }
    if (!this.options.lora) throw new Error(`policy version ${policy.version} carries adapter weights, but the model has no LoRA adapter (only LoRA policies can be shipped to servers)`);
    const folder = `${this.options.adapterName}-v${policy.version}`;
    const localPath = join(this.options.adapterDir, folder);
    mkdirSync(this.options.adapterDir, { recursive: true });
    writePeftAdapter(localPath, policy.weights, this.options.lora, this.options.baseModelPath);
    this.written.push(localPath);
    this.adapter = { name: folder, path: join(this.options.adapterDirOnServer ?? this.options.adapterDir, folder), localPath };
    this.version = policy.version;
    // Loaded on every server now (a server that is down loads it when it is next picked); the error for
    // a server without runtime loading comes here, before any sampling.
    await Promise.all(
      this.pool.servers.map((server) =>
        this.ensureAdapter(server).catch((err) => {
          if (err instanceof ServerError && err.retryable) server.restUntil = performance.now() + this.options.backoffMs;
          else throw err;
        }),
      ),
    );
    while (this.written.length > 2) rmSync(this.written.shift()!, { recursive: true, force: true });
  }

  private async sampleNow(prompts: ArrayLike<number>[], n: number, options: SamplingOptions, signal: AbortSignal | undefined, hooks: SampleHooks): Promise<SampledRows> {
    const started = performance.now();
    signal = fanOutSignal(signal);
    const temperature = options.temperature ?? 1;
    const logprobTemperature = options.logprobTemperature ?? 1;
    if (temperature > 0 && Math.abs(logprobTemperature - temperature) > 1e-6) {
      throw new Error(`the openai engine records log-probs at the sampling temperature (${temperature}); logprobTemperature ${logprobTemperature} differs`);
    }
    const version = this.version;
    const model = this.modelName('on');
    const eos = options.eosTokenIds ?? this.tokenizer.eosTokenIds;
    // One seed per prompt, drawn in order: a prompt's completions do not depend on which server answers.
    const seeds = new Rng(options.seed ?? 0);
    const requests = Array.from(prompts, (prompt) => {
      const body: CompletionRequest = {
        model,
        prompt: Array.from(prompt),
        n,
        max_tokens: options.maxNewTokens,
        temperature,
        top_p: options.topP ?? 1,
        top_k: options.topK && options.topK > 0 ? options.topK : -1,
        min_p: options.minP ?? 0,
        repetition_penalty: options.repetitionPenalty ?? 1,
        seed: seeds.nextUint32() >>> 1,
        stop: options.stop && options.stop.length > 0 ? options.stop : undefined,
        stop_token_ids: [...eos],
        logprobs: 0,
        return_tokens_as_token_ids: true,
        skip_special_tokens: true,
        include_stop_str_in_output: false,
      };
      return body;
    });
    const answers = await Promise.all(
      requests.map((body, i) =>
        this.pool.request(
          `completions for prompt ${i}`,
          async (server, s) => {
            await this.ensureAdapter(server, s);
            const answer = await this.pool.call(server, '/v1/completions', body, s).catch((err) => {
              // A restarted server has lost its adapters: load again, then retry.
              if (err instanceof ServerError && err.status === 404 && this.adapter) {
                server.loadedAdapter = undefined;
                throw new ServerError(err.message, true, err.status);
              }
              throw err;
            });
            const parsed = parseCompletionAnswer(answer, { n, maxTokens: options.maxNewTokens, vocabSize: this.options.vocabSize, eosTokenIds: eos });
            for (let k = 0; k < n; k++) hooks.onFinished?.();
            return parsed;
          },
          signal,
        ),
      ),
    );
    const completions = answers.flat();
    const promptLists = requests.flatMap((r) => new Array<number[]>(n).fill(r.prompt as number[]));
    const rows = rowsOf(
      promptLists,
      completions.map((c) => c.ids),
      completions.map((_, i) => Math.floor(i / n)),
    );
    const logprobs = new Float32Array(rows.completionIds.length);
    completions.forEach((c, i) => logprobs.set(c.logprobs, rows.completionOffsets[i]));
    // Text from our tokenizer, cut before the first stop string, as the local engines do.
    const stops = options.stop && options.stop.length > 0 ? this.tokenizer.stopMatcher(options.stop) : undefined;
    const texts = completions.map((c) => {
      const text = this.tokenizer.decode(c.ids, { skipSpecialTokens: true });
      return stops ? stops.cut(text) : text;
    });
    const refLogprobs = options.reference
      ? await this.score(rows, { adapters: 'off', temperature: options.reference.temperature }, signal)
      : undefined;
    return {
      ...rows,
      logprobs,
      refLogprobs,
      finishReasons: completions.map((c) => c.finishReason),
      texts,
      policyVersion: version,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Per-token log-probs of given completions, from vLLM's `prompt_logprobs` on prompt + completion. */
  async score(rows: Rows, options: ScoreOptions, signal?: AbortSignal): Promise<TokenLogprobs> {
    const model = this.modelName(options.adapters);
    signal = fanOutSignal(signal);
    const out = new Float32Array(rows.completionIds.length);
    await Promise.all(
      Array.from({ length: rowCount(rows) }, async (_, i) => {
        const prompt = promptOf(rows, i);
        const completion = completionOf(rows, i);
        if (completion.length === 0) return;
        const body: CompletionRequest = {
          model,
          prompt: [...prompt, ...completion],
          max_tokens: 1,
          temperature: options.temperature,
          prompt_logprobs: 0,
          return_tokens_as_token_ids: true,
        };
        const values = await this.pool.request(
          `scoring row ${i}`,
          async (server, s) => {
            if (options.adapters === 'on') await this.ensureAdapter(server, s);
            return completionLogprobsFromPrompt(await this.pool.call(server, '/v1/completions', body, s), completion, prompt.length);
          },
          signal,
        );
        out.set(values, rows.completionOffsets[i]);
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    // Best effort: a server that has gone away has no adapters to unload.
    await Promise.all(this.pool.servers.map((server) => this.unload(server, server.loadedAdapter).catch(() => {})));
    for (const path of this.written.splice(0)) rmSync(path, { recursive: true, force: true });
    if (this.options.removeAdapterDir) rmSync(this.options.adapterDir, { recursive: true, force: true });
  }

  private modelName(adapters: 'on' | 'off'): string {
    if (this.baseModel === undefined) throw new Error('the openai engine is not connected (connect() first)');
    return adapters === 'on' && this.adapter ? this.adapter.name : this.baseModel;
  }

  /** Loads the current adapter on `server` unless it has it; the one it had before is unloaded. */
  private async ensureAdapter(server: Server, signal?: AbortSignal): Promise<void> {
    const adapter = this.adapter;
    while (adapter && server.loadedAdapter !== adapter.name) {
      if (server.adapterLoading) {
        await server.adapterLoading;
        continue;
      }
      const previous = server.loadedAdapter;
      server.adapterLoading = (async () => {
        try {
          await this.pool.call(server, '/v1/load_lora_adapter', { lora_name: adapter.name, lora_path: adapter.path }, signal ?? AbortSignal.timeout(this.options.timeoutMs));
        } catch (err) {
          if (err instanceof ServerError && (err.status === 404 || err.status === 405 || err.status === 501)) {
            throw new Error(
              `${server.url} cannot load LoRA adapters at run time (POST /v1/load_lora_adapter answered HTTP ${err.status}). ` +
                'For vLLM: launch it with --enable-lora --max-lora-rank R and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True; grpoflow serve loads them always. ' +
                'llama-server takes adapters only at launch (--lora): it can sample a fixed policy but cannot follow training.',
            );
          }
          throw err;
        }
        server.loadedAdapter = adapter.name;
        if (previous && previous !== adapter.name) await this.unload(server, previous).catch((err) => this.options.onWarning?.(`${server.url}: unloading ${previous}: ${(err as Error).message}`));
      })();
      try {
        await server.adapterLoading;
      } finally {
        server.adapterLoading = undefined;
      }
    }
  }

  private async unload(server: Server, name: string | undefined): Promise<void> {
    if (!name) return;
    await this.pool.call(server, '/v1/unload_lora_adapter', { lora_name: name }, AbortSignal.timeout(this.options.timeoutMs));
    if (server.loadedAdapter === name) server.loadedAdapter = undefined;
  }
}
