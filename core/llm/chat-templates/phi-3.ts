import type { BuiltinChatTemplate } from './types.js';

// microsoft/Phi-3.5-mini-instruct tokenizer_config.json `chat_template` (the Phi-3 family format with a
// system turn; Phi-3-mini-4k-instruct's current template is the same minus `system`).
export const phi3: BuiltinChatTemplate = {
  name: 'phi-3',
  source: 'microsoft/Phi-3.5-mini-instruct tokenizer_config.json',
  endOfTurn: '<|end|>',
  template:
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}" +
    "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}" +
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
};
