import type { BuiltinChatTemplate } from './types.js';

// ChatML as published with OpenHermes / the transformers chat-templating guide: every message is
// `<|im_start|>{role}\n{content}<|im_end|>\n`; no bos.
export const chatml: BuiltinChatTemplate = {
  name: 'chatml',
  source: 'transformers chat_templating docs (ChatML), teknium/OpenHermes-2.5-Mistral-7B tokenizer_config.json',
  endOfTurn: '<|im_end|>',
  template:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
};
