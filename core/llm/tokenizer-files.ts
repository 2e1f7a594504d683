/** The tokenizer-side files of a checkpoint folder that a saved model carries along when present. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'special_tokens_map.json'] as const;
