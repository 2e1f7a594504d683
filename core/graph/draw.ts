// Drawings of a validated graph for `grpoflow graph`: Mermaid (renders on GitHub, in many editors) and
// Graphviz DOT. Nodes show their id, type and version and their ports; edges go output port → input
// port, styled by kind (stream solid, latest bold, resource dotted); the feedback edge that closes the
// RL cycle (trainer → generator policy) is dashed, red and labelled `feedback`.
import type { PortKind } from '../plugin.js';
import type { ResolvedEdge, ResolvedGraph, ResolvedNode } from './resolved.js';

export const DRAW_FORMATS = ['mermaid', 'dot'] as const;
export type DrawFormat = (typeof DRAW_FORMATS)[number];

function portNames(node: ResolvedNode, side: 'inputs' | 'outputs'): string[] {
  return Object.keys(node.node.def[side]);
}

function edgeLabel(edge: ResolvedEdge): string {
  const ports = edge.from.port === edge.to.port ? edge.from.port : `${edge.from.port} → ${edge.to.port}`;
  return edge.feedback ? `feedback: ${ports}` : ports;
}

const MERMAID_ARROW: Record<PortKind, string> = { stream: '-->', latest: '==>', resource: '-.->' };

function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

export function graphToMermaid(graph: ResolvedGraph): string {
  const key = new Map(graph.nodes.map((n, i) => [n.id, `n${i}`]));
  const lines = ['flowchart LR', `  %% ${graph.name}`];
  for (const node of graph.nodes) {
    const ins = portNames(node, 'inputs');
    const outs = portNames(node, 'outputs');
    const ports = [ins.length ? `in: ${ins.join(', ')}` : '', outs.length ? `out: ${outs.join(', ')}` : ''].filter(Boolean);
    const label = [`<b>${mermaidText(node.id)}</b>`, `${mermaidText(node.type)} v${node.version}`, ...ports.map(mermaidText)].join('<br/>');
    lines.push(`  ${key.get(node.id)}["${label}"]`);
  }
  const feedbackLinks: number[] = [];
  graph.edges.forEach((edge, i) => {
    const arrow = edge.feedback ? '-.->' : MERMAID_ARROW[edge.kind];
    lines.push(`  ${key.get(edge.from.node)} ${arrow}|"${mermaidText(edgeLabel(edge))}"| ${key.get(edge.to.node)}`);
    if (edge.feedback) feedbackLinks.push(i);
  });
  if (feedbackLinks.length) lines.push(`  linkStyle ${feedbackLinks.join(',')} stroke:#d62728,stroke-width:2px,color:#d62728`);
  return lines.join('\n') + '\n';
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Text inside a record label: the characters that structure records are escaped. */
function recordText(text: string): string {
  return text.replace(/([\\{}|<>"\s])/g, (c) => (c === ' ' ? '\\ ' : `\\${c}`));
}

const DOT_STYLE: Record<PortKind, string> = { stream: 'solid', latest: 'bold', resource: 'dotted' };

export function graphToDot(graph: ResolvedGraph): string {
  const lines = [
    `digraph ${dotString(graph.name)} {`,
    '  rankdir=LR;',
    '  node [shape=record, fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  for (const node of graph.nodes) {
    const ports = (side: 'inputs' | 'outputs', prefix: string) => portNames(node, side).map((p) => `<${prefix}_${p}> ${recordText(p)}`).join('|');
    const ins = ports('inputs', 'in');
    const outs = ports('outputs', 'out');
    const middle = `${recordText(node.id)}\\n${recordText(`${node.type} v${node.version}`)}`;
    const label = `{${[ins && `{${ins}}`, middle, outs && `{${outs}}`].filter(Boolean).join('|')}}`;
    lines.push(`  ${dotString(node.id)} [label="${label}"];`); // recordText escaped quotes and backslashes
  }
  for (const edge of graph.edges) {
    const attrs = edge.feedback
      ? [`label=${dotString(edgeLabel(edge))}`, 'style=dashed', 'color="#d62728"', 'fontcolor="#d62728"', 'constraint=false']
      : [`label=${dotString(edgeLabel(edge))}`, `style=${DOT_STYLE[edge.kind]}`];
    const from = `${dotString(edge.from.node)}:${dotString(`out_${edge.from.port}`)}`;
    const to = `${dotString(edge.to.node)}:${dotString(`in_${edge.to.port}`)}`;
    lines.push(`  ${from} -> ${to} [${attrs.join(', ')}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function drawGraph(graph: ResolvedGraph, format: DrawFormat): string {
  return format === 'dot' ? graphToDot(graph) : graphToMermaid(graph);
}
