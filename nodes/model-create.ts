// model.create: a randomly initialised Llama-architecture model (from the graph's own sizes) with the
// project's byte-level tokenizer and compact chat template, the starting point for training from scratch.
import { of } from 'rxjs';
import { z } from 'zod';
import { BYTE_CHAT_BOS_ID, BYTE_CHAT_EOS_ID, BYTE_CHAT_PAD_ID, BYTE_CHAT_VOCAB_SIZE, byteChatTemplate, byteChatTokenizer } from '../core/llm/byte-chat.js';
import { parseModelConfig } from '../core/llm/config.js';
import { modelEngineNamed } from '../core/engine/model-engine.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

export const modelCreateConfig = z
  .strictObject({
    hidden_size: z.number().int().positive().default(128).describe('Width of the residual stream.'),
    num_layers: z.number().int().positive().default(4).describe('Decoder layers.'),
    num_heads: z.number().int().positive().default(4).describe('Query heads.'),
    num_kv_heads: z.number().int().positive().default(2).describe('Key/value heads (grouped-query attention); must divide num_heads.'),
    head_dim: z.number().int().positive().default(32).describe('Width of one attention head (even).'),
    intermediate_size: z.number().int().positive().default(384).describe('Width of the SwiGLU MLP.'),
    max_position_embeddings: z.number().int().positive().default(512).describe('Longest sequence the model is meant for.'),
    tie_word_embeddings: z.boolean().default(true).describe('Share the token embedding with the output layer.'),
    rope_theta: z.number().positive().default(10000).describe('Rotary embedding base.'),
    rms_norm_eps: z.number().positive().default(1e-5).describe('RMSNorm epsilon.'),
    initializer_range: z.number().positive().default(0.02).describe('Standard deviation of the normal weight init (transformers\' initializer_range).'),
    seed: z.number().int().default(0).describe('Seed of the random init.'),
    engine: z.string().min(1).default('tfjs').describe('The model engine that holds the weights (`grpoflow nodes` lists the installed ones; built in: tfjs).'),
  })
  .refine((c) => c.num_heads % c.num_kv_heads === 0, { message: 'num_kv_heads must divide num_heads' })
  .refine((c) => c.head_dim % 2 === 0, { message: 'head_dim must be even (rotary embedding)' });

export type ModelCreateConfig = z.output<typeof modelCreateConfig>;

/** A transformers config.json (Llama) for the graph's sizes and the byte-level vocabulary. */
export function scratchLlamaConfig(c: ModelCreateConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: BYTE_CHAT_VOCAB_SIZE,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_layers,
    num_attention_heads: c.num_heads,
    num_key_value_heads: c.num_kv_heads,
    head_dim: c.head_dim,
    hidden_act: 'silu',
    max_position_embeddings: c.max_position_embeddings,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: null,
    tie_word_embeddings: c.tie_word_embeddings,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    initializer_range: c.initializer_range,
    bos_token_id: BYTE_CHAT_BOS_ID,
    eos_token_id: BYTE_CHAT_EOS_ID,
    pad_token_id: BYTE_CHAT_PAD_ID,
    torch_dtype: 'float32',
  };
}

export const modelCreate = defineNode({
  type: 'model.create',
  version: 1,
  description: 'A random-init Llama model of the given sizes with a byte-level tokenizer and a compact chat template, for training from scratch.',
  inputs: {},
  outputs: {
    model: { type: ports.model, description: 'The randomly initialised model.' },
    tokenizer: { type: ports.tokenizer, description: 'Byte-level tokenizer (ids 0–255 are bytes) with <|begin_of_text|>, <|system|>, <|user|>, <|assistant|>, <|end|> (eos), <|pad|>.' },
    template: { type: ports.chatTemplate, description: 'The project\'s compact chat template (core/llm/templates/byte-chat.jinja).' },
  },
  config: modelCreateConfig,
  run(ctx) {
    const config = parseModelConfig(scratchLlamaConfig(ctx.config), undefined, `node ${ctx.id}`);
    const model = modelEngineNamed(ctx.services, ctx.config.engine, `model.create ${ctx.id}`).create(config, { seed: ctx.config.seed });
    ctx.onTeardown(() => model.dispose());
    return { model: of(model), tokenizer: of(byteChatTokenizer()), template: of(byteChatTemplate()) };
  },
});
