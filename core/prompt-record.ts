// The prompt record, apart from core/ports.ts so plain modules (the engine boundary, SFT examples) can
// name it without importing the port table (and, through it, the plugin API).
import type { ChatMessage } from './llm/chat-template.js';

/** One dataset row after mapping: the conversation to prompt with, plus the row's other fields (the answer, ...). */
export interface PromptRecord {
  id: string;
  messages: ChatMessage[];
  /** The row's other fields, handed to reward functions (`answer`, ...). */
  fields: Record<string, unknown>;
}
