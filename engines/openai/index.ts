// The `openai` rollout engine as the core plugin registers it: `rollout.generate: {engine: openai,
// engine_options: {base_urls: [...]}}`. Its options are checked here, with errors that name them.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import { OpenAIRolloutEngine } from './openai-engine.js';

export const openaiEngineOptions = z.strictObject({
  base_urls: z
    .array(z.url({ protocol: /^https?$/ }))
    .min(1)
    .describe('The servers, e.g. [http://10.0.0.5:8000, http://10.0.0.6:8000] (without /v1).'),
  model: z.string().min(1).optional().describe('The base model\'s name on the servers; default the first model GET /v1/models lists without a parent.'),
  adapter_dir: z
    .string()
    .min(1)
    .optional()
    .describe('Folder the policy adapters are written to, one per version; every server must read it (a shared filesystem for remote servers). Default a folder under the system temp dir.'),
  adapter_dir_on_server: z.string().min(1).optional().describe('The same folder as the servers see it, when mounted at another path there.'),
  adapter_name: z.string().min(1).default('grpoflow-policy').describe('Prefix of the versioned adapter names the servers load (NAME-vVERSION).'),
  max_inflight: z.number().int().positive().default(8).describe('Requests in flight per server at most.'),
  max_retries: z.number().int().min(0).default(4).describe('Attempts after the first for a request whose server failed (connection, HTTP 5xx, timeout), each on another server when there is one.'),
  timeout_s: z.number().positive().default(600).describe('One request\'s time limit.'),
  backoff_ms: z.number().positive().default(200).describe('First pause before a retry; doubled per failure.'),
  api_key_env: z.string().min(1).optional().describe('Environment variable holding a bearer token for the servers.'),
});

interface ModelLike {
  dir?: string;
  config?: { vocabSize?: number };
  lora?: { config: { r: number; alpha: number; dropout: number; targetModules: string[]; useRslora: boolean } };
}

export const openaiRolloutEngine: RolloutEngineDefinition = {
  name: 'openai',
  description: 'OpenAI-compatible servers (vLLM, grpoflow serve): one /v1/completions request per prompt with n, token ids and log-probs; policy adapters loaded at run time (vLLM\'s load_lora_adapter); least-loaded with retries and failover.',
  threads: ['main'],
  computesOffThread: true,
  async create({ model, tokenizer, options, warn }) {
    const parsed = openaiEngineOptions.safeParse(options ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`engine openai: engine_options${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
    }
    const o = parsed.data;
    const m = model as ModelLike;
    const apiKey = o.api_key_env ? process.env[o.api_key_env] : undefined;
    if (o.api_key_env && !apiKey) throw new Error(`engine openai: engine_options.api_key_env names ${o.api_key_env}, which is not set`);
    const engine = new OpenAIRolloutEngine(tokenizer, {
      baseUrls: o.base_urls,
      model: o.model,
      adapterDir: o.adapter_dir ?? join(tmpdir(), `grpoflow-openai-${process.pid}-${Date.now().toString(36)}`),
      removeAdapterDir: o.adapter_dir === undefined,
      adapterDirOnServer: o.adapter_dir_on_server,
      adapterName: o.adapter_name,
      maxInflight: o.max_inflight,
      maxRetries: o.max_retries,
      timeoutMs: o.timeout_s * 1000,
      backoffMs: o.backoff_ms,
      apiKey,
      lora: m?.lora?.config,
      baseModelPath: m?.dir,
      vocabSize: m?.config?.vocabSize ?? tokenizer.vocabSize,
      onWarning: warn,
    });
    await engine.connect();
    return engine;
  },
};
