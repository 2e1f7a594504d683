// What the benches share: model shapes and the backend they run on.
import type { BackendName } from '../engines/tfjs/backend.js';

/** wasm by default (the CPU path every user has); `BENCH_BACKEND=webgpu npm run bench -- NAME` on a GPU machine. */
export function benchBackend(): BackendName {
  return (process.env.BENCH_BACKEND as BackendName | undefined) ?? 'wasm';
}

/** A config.json shaped like SmolLM2-135M (random weights; the benches time it, nothing reads its outputs). */
export const smolLM2ShapedConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 576,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  intermediate_size: 1536,
  vocab_size: 49152,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  tie_word_embeddings: true,
  max_position_embeddings: 8192,
  hidden_act: 'silu',
  initializer_range: 0.02,
  bos_token_id: 1,
  eos_token_id: 2,
};
