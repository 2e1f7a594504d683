// A validated graph, ready to run: node types looked up, configs parsed with defaults, edges typed.
import type { PortKind } from '../plugin.js';
import type { NodeRegistry, RegisteredNode } from '../registry.js';
import type { BackendName } from './graph-file.js';

export const DEFAULT_BUFFER = 2;

export interface ResolvedEdge {
  from: { node: string; port: string };
  to: { node: string; port: string };
  /** Position within a `multiple: true` input's list (0 otherwise). */
  index: number;
  kind: PortKind;
  /** Channel capacity (stream edges only). */
  buffer: number;
  /** Closes the legal RL cycle (trainer → generator). */
  feedback: boolean;
}

export interface ResolvedNode {
  id: string;
  type: string;
  version: number;
  node: RegisteredNode;
  config: unknown;
  /** Incoming edges by input port, in YAML order. */
  inputs: Record<string, ResolvedEdge[]>;
}

export interface ResolvedGraph {
  file: string;
  baseDir: string;
  name: string;
  backend: BackendName;
  seed: number;
  params: Record<string, unknown>;
  /** Nodes in a start order: every producer before its consumers, feedback edges aside. */
  nodes: ResolvedNode[];
  edges: ResolvedEdge[];
  /** The environment variables `${env.X}` read, with their values (kept out of logs: core/runtime/redact.ts). */
  envValues?: Record<string, string>;
  registry: NodeRegistry;
}
