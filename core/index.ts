// The public API of grpoflow, for plugin authors and embedders (`import { defineNode } from 'grpoflow'`).
export * from './plugin.js';
export * from './ports.js';
export { Rng, type RngState } from './rng.js';
export { NodeRegistry, PluginLoadError, type RegisteredNode, type RegisteredPlugin } from './registry.js';
export { loadGraphFile, loadGraphText, type LoadOptions, type LoadResult } from './graph/load.js';
export type { ResolvedGraph, ResolvedNode, ResolvedEdge } from './graph/resolved.js';
export { formatDiagnostic, GraphValidationError, type Diagnostic, type DiagnosticCode } from './graph/diagnostics.js';
export { runGraph, NodeRunError, type RunHandle, type RunOptions, type RunResult } from './runtime/run-graph.js';
export { MetricsBus, type EventRecord } from './runtime/metrics-bus.js';
export type { NodeState, NodeStates, NodeStatus } from './runtime/node-state.js';
export { mapAsync, fromIterableWithBackpressure } from './runtime/operators/index.js';
export { holdDelivery } from './runtime/delivery.js';
export { ANY_PORT_TYPE } from './graph/validate-edges.js';
