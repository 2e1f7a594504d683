// Every `grpoflow` subcommand. Add a command by importing it and appending it to the list: either an
// object satisfying Command, or a module (`import * as x`) exporting `name`, `summary`, `usage`, `run`.
import type { Command } from '../command.js';
import * as exportGguf from './export-gguf.js';
import * as generate from './generate.js';
import { graph } from './graph.js';
import { init } from './init.js';
import { nodes } from './nodes.js';
import { report } from './report.js';
import { run } from './run.js';
import { schema } from './schema.js';
import * as serve from './serve.js';
import { validate } from './validate.js';

export const commands: Command[] = [run, validate, nodes, schema, generate, serve, exportGguf, report, graph, init];
