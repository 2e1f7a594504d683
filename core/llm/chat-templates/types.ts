/** A named chat template that can replace a model's own, as Unsloth's `get_chat_template` does. */
export interface BuiltinChatTemplate {
  name: string;
  /** Where the template text comes from. */
  source: string;
  /** The Jinja source. */
  template: string;
  /** The token that ends an assistant turn in this format: generation should stop on it. */
  endOfTurn: string;
}
