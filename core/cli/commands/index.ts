// Every `grpoflow` subcommand. Add a command by importing it and appending it to the list.
import type { Command } from '../command.js';
import { nodes } from './nodes.js';
import { run } from './run.js';
import { schema } from './schema.js';
import { validate } from './validate.js';

export const commands: Command[] = [run, validate, nodes, schema];
