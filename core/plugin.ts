// The plugin API: how a node type is declared, and how a set of node types is published.
// Built-in nodes (nodes/) and third-party plugins use exactly these helpers.
import type { Observable } from 'rxjs';
import type { z } from 'zod';
import type { RolloutEngineDefinition } from './engine/interfaces.js';
import type { ModelEngineDefinition } from './engine/model-engine.js';
import type { ArchitectureDefinition } from './llm/architectures/types.js';
import type { BuiltinChatTemplate } from './llm/chat-templates/types.js';

/** The plugin API version this build of grpoflow speaks. Plugins declare the one they were written for. */
export const PLUGIN_API_VERSION = 1;

/**
 * How values travel along an edge:
 * - `resource`: one value, produced once and shared by every consumer (a model, a tokenizer, a reward function).
 * - `stream`: a sequence of items through a bounded buffer (prompts, rollout batches, metrics).
 * - `latest`: a "latest value" stream; consumers see the most recent item only (policy weights fed back
 *   from the trainer to the rollout node). Only `latest` edges may close a cycle, and only into an
 *   input declared `feedback: true`.
 */
export type PortKind = 'resource' | 'stream' | 'latest';

/** A named port type. `T` is the type of the values it carries (phantom, for inference only). */
export interface PortType<T = unknown, K extends PortKind = PortKind> {
  readonly name: string;
  readonly kind: K;
  readonly description?: string;
  /** Never set: carries `T` for type inference. */
  readonly __value?: T;
}

export function resourcePort<T>(name: string, description?: string): PortType<T, 'resource'> {
  return { name, kind: 'resource', description };
}
export function streamPort<T>(name: string, description?: string): PortType<T, 'stream'> {
  return { name, kind: 'stream', description };
}
export function latestPort<T>(name: string, description?: string): PortType<T, 'latest'> {
  return { name, kind: 'latest', description };
}

/** An input port: its type, and whether it may be left unconnected, take several edges, or close the RL loop. */
export interface InputSpec<P extends PortType = PortType> {
  type: P;
  optional?: boolean;
  /** Several edges may connect here (`in: {rewards: [a.reward, b.reward]}`); the node receives an array. */
  multiple?: boolean;
  /** This input is fed by a later node (the trainer's new weights); the one legal kind of cycle. */
  feedback?: boolean;
  description?: string;
}
export interface OutputSpec<P extends PortType = PortType> {
  type: P;
  description?: string;
}

export type InputSpecs = Record<string, InputSpec>;
export type OutputSpecs = Record<string, OutputSpec>;

type ValueOf<P> = P extends PortType<infer T, infer _K> ? T : never;
type KindOf<P> = P extends PortType<infer _T, infer K> ? K : never;

/** Resources arrive resolved (provided once, as Effect does); streams and latest values arrive as Observables. */
type InputValue<S extends InputSpec> = S['multiple'] extends true
  ? KindOf<S['type']> extends 'resource'
    ? ValueOf<S['type']>[]
    : Observable<ValueOf<S['type']>>[]
  : KindOf<S['type']> extends 'resource'
    ? ValueOf<S['type']>
    : Observable<ValueOf<S['type']>>;

export type NodeInputs<I extends InputSpecs> = {
  [K in keyof I]: I[K]['optional'] extends true ? InputValue<I[K]> | undefined : InputValue<I[K]>;
};
/** Every output is an Observable; a resource output emits its one value (further values are ignored). */
export type NodeOutputs<O extends OutputSpecs> = { [K in keyof O]?: Observable<ValueOf<O[K]['type']>> };

/**
 * What `run` returns: its outputs, plus optionally `done` (reserved name). A node finishes when every
 * returned output and `done` has completed. A sink with no outputs returns `done` — the pipeline that
 * consumes its inputs — so the runtime subscribes to it (nothing flows until something subscribes)
 * and knows when the node has finished.
 */
export type NodeRunResult<O extends OutputSpecs> = NodeOutputs<O> & { done?: Observable<unknown> | Promise<unknown> };

/** A named scalar set published on the metrics bus. */
export interface MetricValues {
  [name: string]: number;
}
export type EventLevel = 'debug' | 'info' | 'warn' | 'error';

export interface MetricsPublisher {
  /** Publish named scalars for a step; the bus adds the node id. */
  publish(step: number, values: MetricValues): void;
  /** A free-form event (a log line, a sampled completion, a checkpoint written). */
  event(level: EventLevel, message: string, data?: Record<string, unknown>): void;
}

/** Shared services provided once per run and handed to every node (backend, output folder, ...). */
export interface Services {
  [name: string]: unknown;
}

export interface NodeContext<C> {
  /** The node's id in the graph. */
  readonly id: string;
  /** The node's config, validated by its zod schema with defaults applied. */
  readonly config: C;
  /** Aborted when the graph stops (a failure elsewhere, Ctrl-C, or normal completion of the sinks). */
  readonly signal: AbortSignal;
  readonly metrics: MetricsPublisher;
  /** The run's output folder (`--out`). */
  readonly outDir: string;
  /** The folder of the graph file, for resolving relative paths in configs. */
  readonly baseDir: string;
  readonly services: Services;
  /** Register cleanup to run at teardown, in reverse order of registration. */
  onTeardown(fn: () => void | Promise<void>): void;
  /**
   * Wait until every stream edge leaving this node has room. A producer that generates work
   * asynchronously (rollouts) awaits this before starting the next item, so it runs ahead of its
   * consumer by at most the edge's buffer.
   */
  outputReady(): Promise<void>;
}

export interface NodeDefinition<
  C extends z.ZodType = z.ZodType,
  I extends InputSpecs = InputSpecs,
  O extends OutputSpecs = OutputSpecs,
> {
  /** `name` for built-ins, `plugin/name` once registered by a plugin. */
  type: string;
  version: number;
  description?: string;
  inputs: I;
  outputs: O;
  config: C;
  run(ctx: NodeContext<z.output<C>>, inputs: NodeInputs<I>): NodeRunResult<O> | Promise<NodeRunResult<O>>;
}

/** Declare a node type; config and port types are inferred so `run` is fully typed. */
export function defineNode<C extends z.ZodType, I extends InputSpecs, O extends OutputSpecs>(
  def: NodeDefinition<C, I, O>,
): NodeDefinition<C, I, O> {
  return def;
}

export interface PluginDefinition {
  /** The namespace of this plugin's node types (`myplugin` → `myplugin/node`). Built-ins use `core`, un-namespaced. */
  name: string;
  apiVersion: number;
  // Node definitions are heterogeneous; each was checked by defineNode where it was written.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  nodes: NodeDefinition<any, any, any>[];
  /** Rollout engines this plugin provides, by name (`rollout.generate: {engine: NAME}`). */
  rolloutEngines?: RolloutEngineDefinition[];
  /** Model engines this plugin provides, by name: loading, LoRA, saving and the trainers (a model names its engine). */
  modelEngines?: ModelEngineDefinition[];
  /** Model architecture families this plugin adds (`architectures[0]` of config.json → how it differs from the shared block). */
  architectures?: ArchitectureDefinition[];
  /** Named chat templates this plugin adds (`chat.template: {name}`). */
  chatTemplates?: BuiltinChatTemplate[];
}

export function definePlugin(def: PluginDefinition): PluginDefinition {
  return def;
}
