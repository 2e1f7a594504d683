// How closely this backend reproduces transformers/peft on the llama-tiny reference fixture:
// the largest absolute error of last-position logits and of sequence log-probs, and whether greedy
// tokens (through the KV cache) are identical, for the base model, the PEFT adapter and the merged model.
// The tests assert the same on cpu and wasm; this is how the GPU backends are checked (`BENCH_BACKEND=webgpu`).
// Last line: one JSON object.
import { initBackend, type BackendName } from '../engines/tfjs/backend.js';
import { loadPeftAdapter, mergeLora } from '../engines/tfjs/lora.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { tf } from '../engines/tfjs/tf.js';
import { LLAMA_TINY, readReference, type ReferenceChat } from '../test/llm/fixture.js';

interface VariantResult {
  variant: string;
  max_logit_error: number;
  max_logprob_error: number;
  greedy_identical: boolean;
}

function logSoftmaxRows(logits: Float32Array, vocab: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / vocab; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < vocab; i++) out[r * vocab + i] = row[i] - lse;
  }
  return out;
}

// Reads are asynchronous: tfjs-webgpu cannot read GPU memory synchronously in Node (no OffscreenCanvas).
async function greedyThroughCache(model: CausalLM, prompt: number[], steps: number, eos: number[]): Promise<number[]> {
  const cache = model.newCache(1, prompt.length + steps + 1);
  const out: number[] = [];
  try {
    let logits: tf.Tensor = model.prefill(cache, 0, prompt);
    for (let i = 0; i < steps; i++) {
      const best = tf.tidy(() => logits.reshape([-1]).argMax());
      const next = (await best.data())[0];
      best.dispose();
      logits.dispose();
      out.push(next);
      if (eos.includes(next)) return out;
      logits = model.decode(cache, [0], [next]);
    }
    logits.dispose();
    return out;
  } finally {
    model.disposeCache(cache);
  }
}

async function compare(model: CausalLM, variant: string, chats: ReferenceChat[]): Promise<VariantResult> {
  const vocab = model.config.vocabSize;
  let logitError = 0;
  let logprobError = 0;
  let greedyIdentical = true;
  for (const chat of chats) {
    const sequence = [...chat.ids, ...chat.greedy];
    const logits = tf.tidy(() => model.forward(tf.tensor2d([sequence], [1, sequence.length], 'int32')));
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    const last = data.subarray((chat.ids.length - 1) * vocab, chat.ids.length * vocab);
    for (let i = 0; i < vocab; i++) logitError = Math.max(logitError, Math.abs(last[i] - chat.last_logits[i]));
    const logp = logSoftmaxRows(data, vocab);
    for (let t = 0; t + 1 < sequence.length; t++) {
      logprobError = Math.max(logprobError, Math.abs(logp[t * vocab + sequence[t + 1]] - chat.sequence_logprobs[t]));
    }
    const greedy = await greedyThroughCache(model, chat.ids, chat.greedy.length, model.config.eosTokenIds);
    greedyIdentical &&= greedy.length === chat.greedy.length && greedy.every((t, i) => t === chat.greedy[i]);
  }
  return { variant, max_logit_error: logitError, max_logprob_error: logprobError, greedy_identical: greedyIdentical };
}

export async function run(log: (line: string) => void = console.log): Promise<VariantResult[]> {
  const backend = await initBackend((process.env.BENCH_BACKEND as BackendName | undefined) ?? 'auto', log);
  const reference = readReference();
  const results: VariantResult[] = [];

  const base = await loadModel(LLAMA_TINY);
  results.push(await compare(base, 'base', reference.chats));
  loadPeftAdapter(base, `${LLAMA_TINY}/adapter`);
  results.push(await compare(base, 'adapter', reference.adapter));
  mergeLora(base);
  results.push(await compare(base, 'merged', reference.merged));
  base.dispose();

  for (const r of results) {
    log(`${backend.name} ${r.variant.padEnd(8)} logits ${r.max_logit_error.toExponential(2)}  log-probs ${r.max_logprob_error.toExponential(2)}  greedy ${r.greedy_identical ? 'identical' : 'DIFFERENT'}`);
  }
  const worst = {
    bench: 'fidelity',
    model: 'llama-tiny',
    backend: backend.name,
    max_logit_error: Math.max(...results.map((r) => r.max_logit_error)),
    max_logprob_error: Math.max(...results.map((r) => r.max_logprob_error)),
    greedy_identical: results.every((r) => r.greedy_identical),
    within_1e4: results.every((r) => r.max_logit_error <= 1e-4 && r.max_logprob_error <= 1e-4),
  };
  log(JSON.stringify(worst));
  return results;
}
