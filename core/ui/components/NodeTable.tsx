// The graph's nodes: state, items in/out, throughput, and how much waits on their inputs.
import { Box, Text } from 'ink';
import type { NodeRow } from '../view-model.js';
import type { UiNodeStatus } from '../types.js';

const STATUS_COLOUR: Record<UiNodeStatus, string> = { idle: 'gray', running: 'cyan', done: 'green', failed: 'red', cancelled: 'yellow' };

const COLUMNS = [
  { title: 'node', width: 16, align: 'left' },
  { title: 'type', width: 20, align: 'left' },
  { title: 'state', width: 10, align: 'left' },
  { title: 'in', width: 7, align: 'right' },
  { title: 'out', width: 7, align: 'right' },
  { title: 'items/s', width: 8, align: 'right' },
  { title: 'queue', width: 6, align: 'right' },
] as const;

function cell(text: string, index: number): string {
  const { width, align } = COLUMNS[index];
  const cut = text.length > width - 1 ? text.slice(0, width - 2) + '…' : text;
  return align === 'left' ? cut.padEnd(width) : cut.padStart(width - 1) + ' ';
}

export function NodeTable({ nodes }: { nodes: readonly NodeRow[] }) {
  return (
    <Box flexDirection="column">
      <Text bold>{COLUMNS.map((c, i) => cell(c.title, i)).join('')}</Text>
      {nodes.map((n) => (
        <Text key={n.id}>
          {cell(n.id, 0)}
          {cell(n.type, 1)}
          <Text color={STATUS_COLOUR[n.status]}>{cell(n.status, 2)}</Text>
          {cell(String(n.itemsIn), 3)}
          {cell(String(n.itemsOut), 4)}
          {cell(n.status === 'running' ? n.itemsPerSecond.toFixed(1) : '-', 5)}
          {cell(n.queueDepth > 0 ? String(n.queueDepth) : '-', 6)}
        </Text>
      ))}
    </Box>
  );
}
