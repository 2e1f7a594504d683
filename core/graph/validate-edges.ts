// Edge checks: references, port types, required inputs, and the one legal kind of cycle.
import type { InputSpec, OutputSpec } from '../plugin.js';
import type { Diagnostic } from './diagnostics.js';
import { EDGE_REF, type EdgeEntry } from './graph-file.js';
import type { ResolvedEdge, ResolvedNode } from './resolved.js';
import { DEFAULT_BUFFER } from './resolved.js';
import type { SourceMap } from './source.js';
import { didYouMean } from './suggest.js';
import { stronglyConnected } from './strongly-connected.js';

/** An input port whose type is named `any` accepts every port type of the same kind (debug nodes). */
export const ANY_PORT_TYPE = 'any';

function portsCompatible(out: OutputSpec, input: InputSpec): boolean {
  if (out.type.kind !== input.type.kind) return false;
  return input.type.name === ANY_PORT_TYPE || out.type.name === input.type.name;
}

export interface EdgeSource {
  id: string;
  node: ResolvedNode;
  rawIn: Record<string, EdgeEntry | EdgeEntry[]>;
  defaultBuffer?: number;
}

/**
 * Resolves every `in:` edge of the resolved nodes. `declaredIds` holds every node id in the file,
 * including nodes that failed to resolve (their own error is reported already; edges from them are skipped).
 */
export function resolveEdges(sources: EdgeSource[], declaredIds: ReadonlySet<string>, map: SourceMap, diagnostics: Diagnostic[]): ResolvedEdge[] {
  const byId = new Map(sources.map((s) => [s.id, s]));
  const edges: ResolvedEdge[] = [];
  const err = (d: Omit<Diagnostic, 'severity'>) => diagnostics.push({ severity: 'error', ...d });

  for (const { id, node, rawIn, defaultBuffer } of sources) {
    const inputs = node.node.def.inputs as Record<string, InputSpec>;
    for (const [port, raw] of Object.entries(rawIn)) {
      const portPath = ['nodes', id, 'in', port];
      const spec = inputs[port];
      if (!spec) {
        err({
          code: 'UNKNOWN_PORT',
          ...map.key(portPath),
          message: `node \`${id}\` (${node.type}) has no input \`${port}\``,
          suggestion: didYouMean(port, Object.keys(inputs)),
          details: { node: id, port, inputs: Object.keys(inputs) },
        });
        continue;
      }
      const list = Array.isArray(raw) ? raw : [raw];
      if (Array.isArray(raw) && !spec.multiple && list.length !== 1) {
        err({
          code: 'TOO_MANY_EDGES',
          ...map.value(portPath),
          message: `input \`${id}.${port}\` takes one edge, got ${list.length}`,
          details: { node: id, port, count: list.length },
        });
      }
      list.forEach((entry, index) => {
        const entryPath = Array.isArray(raw) ? [...portPath, index] : portPath;
        const ref = typeof entry === 'string' ? entry : entry.from;
        const refPath = typeof entry === 'string' ? entryPath : [...entryPath, 'from'];
        const match = EDGE_REF.exec(ref);
        if (!match) {
          err({
            code: 'BAD_EDGE',
            ...map.value(refPath),
            message: `edge \`${ref}\` into \`${id}.${port}\` must name \`node.output\``,
          });
          return;
        }
        const [, fromId, fromPort] = match;
        const producer = byId.get(fromId);
        if (!producer && declaredIds.has(fromId)) return;
        if (!producer) {
          err({
            code: 'UNKNOWN_NODE_REF',
            ...map.value(refPath),
            message: `edge \`${ref}\` into \`${id}.${port}\` names node \`${fromId}\`, which is not in the graph`,
            suggestion: didYouMean(fromId, declaredIds),
            details: { node: fromId },
          });
          return;
        }
        const outputs = producer.node.node.def.outputs as Record<string, OutputSpec>;
        const out = outputs[fromPort];
        if (!out) {
          const near = didYouMean(fromPort, Object.keys(outputs));
          err({
            code: 'UNKNOWN_PORT',
            ...map.value(refPath),
            message: `node \`${fromId}\` (${producer.node.type}) has no output \`${fromPort}\``,
            suggestion: near?.replace('`', `\`${fromId}.`),
            details: { node: fromId, port: fromPort, outputs: Object.keys(outputs) },
          });
          return;
        }
        if (!portsCompatible(out, spec)) {
          err({
            code: 'PORT_TYPE_MISMATCH',
            ...map.value(refPath),
            message: `\`${ref}\` is a ${out.type.kind} of \`${out.type.name}\`, but \`${id}.${port}\` takes a ${spec.type.kind} of \`${spec.type.name}\``,
            suggestion: suggestCompatibleOutput(sources, spec, id),
            details: { from: { node: fromId, port: fromPort, type: out.type.name, kind: out.type.kind }, to: { node: id, port, type: spec.type.name, kind: spec.type.kind } },
          });
          return;
        }
        edges.push({
          from: { node: fromId, port: fromPort },
          to: { node: id, port },
          index,
          kind: spec.type.kind,
          buffer: (typeof entry === 'object' ? entry.buffer : undefined) ?? defaultBuffer ?? DEFAULT_BUFFER,
          feedback: spec.feedback === true,
        });
      });
    }
    for (const [port, spec] of Object.entries(inputs)) {
      if (!spec.optional && !(port in rawIn)) {
        err({
          code: 'MISSING_INPUT',
          ...map.key(Object.keys(rawIn).length > 0 ? ['nodes', id, 'in'] : ['nodes', id]),
          message: `node \`${id}\` (${node.type}) needs input \`${port}\` (${spec.type.kind} of \`${spec.type.name}\`)`,
          suggestion: suggestCompatibleOutput(sources, spec, id),
          details: { node: id, port, type: spec.type.name, kind: spec.type.kind },
        });
      }
    }
  }
  return edges;
}

function suggestCompatibleOutput(sources: EdgeSource[], spec: InputSpec, exceptId: string): string | undefined {
  for (const s of sources) {
    if (s.id === exceptId) continue;
    for (const [name, out] of Object.entries(s.node.node.def.outputs as Record<string, OutputSpec>)) {
      if (portsCompatible(out, spec)) return `\`${s.id}.${name}\` has a matching type`;
    }
  }
  return undefined;
}

/**
 * Reports every cycle that does not pass through a `feedback: true` input, and returns a start order
 * (producers first; file order among independent nodes).
 */
export function orderNodes(ids: string[], edges: ResolvedEdge[], map: SourceMap, diagnostics: Diagnostic[]): string[] {
  const forward = edges.filter((e) => !e.feedback);
  const next = new Map(ids.map((id) => [id, [] as ResolvedEdge[]]));
  for (const e of forward) next.get(e.from.node)?.push(e);

  // Each strongly connected component with more than one node (or a self-loop) is a cycle.
  const components = stronglyConnected(ids, (v) => (next.get(v) ?? []).map((e) => e.to.node));

  for (const comp of components) {
    const members = new Set(comp);
    const selfLoop = comp.length === 1 && forward.some((e) => e.from.node === comp[0] && e.to.node === comp[0]);
    if (comp.length < 2 && !selfLoop) continue;
    const inner = forward.filter((e) => members.has(e.from.node) && members.has(e.to.node));
    const cycle = cyclePath(ids.find((id) => members.has(id))!, inner);
    const latestEdge = inner.find((e) => e.kind === 'latest');
    const at = inner[0];
    diagnostics.push({
      code: 'GRAPH_CYCLE',
      severity: 'error',
      ...map.value(['nodes', at.to.node, 'in', at.to.port]),
      message: `cycle ${[...cycle, cycle[0]].map((n) => `\`${n}\``).join(' → ')}: only a \`latest\` edge into a \`feedback: true\` input may close a cycle`,
      suggestion: latestEdge
        ? `\`${latestEdge.to.node}.${latestEdge.to.port}\` is a latest edge but its input is not declared feedback`
        : undefined,
      details: { nodes: cycle, members: ids.filter((id) => members.has(id)), edges: inner.map((e) => `${e.from.node}.${e.from.port} -> ${e.to.node}.${e.to.port}`) },
    });
  }

  // Kahn's algorithm, taking ready nodes in file order; nodes left in cycles go last (already reported).
  const indegree = new Map(ids.map((id) => [id, 0]));
  for (const e of forward) indegree.set(e.to.node, indegree.get(e.to.node)! + 1);
  const order: string[] = [];
  const placed = new Set<string>();
  for (;;) {
    const ready = ids.find((id) => !placed.has(id) && indegree.get(id) === 0);
    if (!ready) break;
    placed.add(ready);
    order.push(ready);
    for (const e of next.get(ready) ?? []) indegree.set(e.to.node, indegree.get(e.to.node)! - 1);
  }
  return [...order, ...ids.filter((id) => !placed.has(id))];
}

/** One cycle through `start` along `edges` (all inside one strongly connected component), in path order. */
function cyclePath(start: string, edges: ResolvedEdge[]): string[] {
  const path: string[] = [];
  const visited = new Set<string>();
  const walk = (node: string): boolean => {
    path.push(node);
    visited.add(node);
    for (const e of edges.filter((x) => x.from.node === node)) {
      if (e.to.node === start) return true;
      if (!visited.has(e.to.node) && walk(e.to.node)) return true;
    }
    path.pop();
    return false;
  };
  walk(start);
  return path;
}
