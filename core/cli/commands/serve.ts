// `grpoflow serve`: an OpenAI-compatible server (vLLM's API: /v1/models, /v1/completions with log-probs and
// token ids, runtime LoRA loading) over any registered rollout engine, so a cluster can run grpoflow
// workers where there is no Python, and the `openai` engine is tested against a real server.
import { basename } from 'node:path';
import { ChatTemplate } from '../../llm/chat-template.js';
import { readModelConfig } from '../../llm/config.js';
import { readPeftAdapterConfig } from '../../llm/peft-config.js';
import { readSafetensors } from '../../llm/safetensors.js';
import { Tokenizer } from '../../llm/tokenizer.js';
import { builtinRegistry } from '../../graph/plugin-loader.js';
import type { RolloutEngine } from '../../engine/interfaces.js';
import { parseOptions, requireDir, UsageError } from '../command.js';
import { OpenAIServer } from '../openai-server.js';

export const name = 'serve';
export const summary = 'Serve a model over an OpenAI-compatible API (vLLM\'s completions and LoRA endpoints)';
export const usage = `grpoflow serve --model DIR [--adapter DIR] [--adapter-name NAME] [--engine NAME] [--port N]
    [--host ADDR] [--served-model-name NAME] [--max-batch N] [--backend auto|tensorflow|webgpu|wasm|cpu]

  --model DIR            the model folder (config.json, safetensors, tokenizer)
  --adapter DIR          a PEFT LoRA adapter served beside the base model, as --adapter-name (default
                         the folder's name); more are loaded at run time: POST /v1/load_lora_adapter
                         {"lora_name", "lora_path"}, POST /v1/unload_lora_adapter {"lora_name"}
  --engine NAME          the rollout engine that samples (default tfjs; \`grpoflow nodes\` lists them)
  --port N               default 8000; 0 picks a free port
  --host ADDR            default 127.0.0.1 (0.0.0.0 to serve other machines: there is no authentication)
  --served-model-name    the base model's name in requests and /v1/models (default the folder's name)
  --max-batch N          requests waiting for the engine are merged into one call of at most N
                         completions (default 64); each keeps its own seed

  Served: GET /v1/models; POST /v1/completions (prompt as text or token ids; n, max_tokens, temperature,
  top_p, top_k, min_p, repetition_penalty, seed, stop, stop_token_ids, logprobs: 0,
  return_tokens_as_token_ids, prompt_logprobs: 0). Prints "listening on http://HOST:PORT" when ready.`;

export async function run(argv: string[]): Promise<number> {
  const err = (text: string) => process.stderr.write(`${text}\n`);
  try {
    const o = parseOptions(argv, {
      model: { type: 'string' },
      adapter: { type: 'string' },
      'adapter-name': { type: 'string' },
      engine: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'served-model-name': { type: 'string' },
      backend: { type: 'string' },
      'max-batch': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (o.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    if (!o.model) throw new UsageError('--model DIR is required');
    const port = o.port === undefined ? 8000 : Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || o.port?.trim() === '') throw new UsageError(`--port must be a whole number in 0..65535, got "${o.port}"`);
    const maxBatch = o['max-batch'] === undefined ? 64 : Number(o['max-batch']);
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || o['max-batch']?.trim() === '') throw new UsageError(`--max-batch must be a whole number ≥ 1, got "${o['max-batch']}"`);
    requireDir(o.model, 'model');
    if (o.adapter !== undefined) requireDir(o.adapter, 'adapter');
    const registry = await builtinRegistry();
    const engineName = o.engine ?? 'tfjs';
    const definition = registry.engine(engineName)?.def;
    if (!definition) throw new UsageError(`--engine ${engineName}: no such rollout engine (installed: ${registry.listEngines().map((e) => e.def.name).join(', ')})`);
    if (!definition.threads.includes('main')) throw new UsageError(`--engine ${engineName} cannot run on the server's thread (it runs on: ${definition.threads.join(', ')})`);

    const { initBackend } = await import('../../../engines/tfjs/backend.js');
    await initBackend((o.backend ?? 'auto') as Parameters<typeof initBackend>[0], (line) => err(line));
    const tokenizer = await Tokenizer.fromDir(o.model);
    const config = readModelConfig(o.model);
    const template = await ChatTemplate.fromDir(o.model).catch(() => undefined);
    const { loadModel } = await import('../../../engines/tfjs/model-loader.js');
    const { attachLora, detachLora, forkWithOwnAdapters } = await import('../../../engines/tfjs/lora.js');
    const model = await loadModel(o.model);

    const eos = new Set([...config.eosTokenIds, ...tokenizer.eosTokenIds]);
    // The template's end-of-turn token ends a reply, as rollout.generate stops there.
    const endOfTurn = template?.info.endOfTurn === undefined ? undefined : tokenizer.tokenToId(template.info.endOfTurn);
    if (endOfTurn !== undefined) eos.add(endOfTurn);

    const create = (m: unknown): Promise<RolloutEngine> => definition.create({ model: m, tokenizer, thread: 'main', warn: (line) => err(`warning: ${line}`) });
    const server = new OpenAIServer({
      modelName: o['served-model-name'] ?? basename(o.model.replace(/\/+$/, '')),
      baseEngine: await create(model),
      tokenizer,
      eosTokenIds: [...eos],
      maxPositionEmbeddings: config.maxPositionEmbeddings,
      maxBatch,
      // The engine gets the base model with this adapter's shape attached, then its weights through setWeights
      // (the one way weights reach an engine); the temporary adapter is freed once the engine has its copy.
      async loadAdapter(path) {
        const adapter = readPeftAdapterConfig(path);
        const weights = Object.fromEntries(readSafetensors(adapter.weightsPath));
        const shaped = forkWithOwnAdapters(model);
        try {
          attachLora(shaped, { r: adapter.r, alpha: adapter.alpha, targetModules: adapter.targetModules, useRslora: adapter.useRslora });
          const engine = await create(shaped);
          await engine.setWeights({ version: 0, weights });
          return engine;
        } finally {
          detachLora(shaped);
        }
      },
      log: (line) => err(line),
    });
    if (o.adapter !== undefined) await server.loadAdapter(o['adapter-name'] ?? basename(o.adapter.replace(/\/+$/, '')), o.adapter);
    const address = await server.listen(port, o.host ?? '127.0.0.1');
    process.stdout.write(`listening on http://${address.host}:${address.port} (model ${o['served-model-name'] ?? basename(o.model.replace(/\/+$/, ''))}, engine ${engineName})\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    return 0;
  } catch (e) {
    err(`grpoflow serve: ${(e as Error).message.split('\n')[0]}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
