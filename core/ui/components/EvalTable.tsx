// Evaluation results side by side: one row per evaluation (before, after, ...), one column per measure.
import { Box, Text } from 'ink';
import { formatPercent } from '../format.js';
import type { EvalResult } from '../types.js';

export function EvalTable({ evals }: { evals: readonly EvalResult[] }) {
  if (evals.length === 0) return null;
  const columns = [...new Set(evals.flatMap((e) => Object.keys(e.values)))];
  const show = (name: string, v: number | undefined) => (v === undefined ? '-' : name === 'n' ? String(v) : formatPercent(v));
  return (
    <Box flexDirection="column">
      <Text bold>
        {'eval'.padEnd(12)}
        {columns.map((c) => c.padStart(10)).join('')}
      </Text>
      {evals.map((e) => (
        <Text key={e.label}>
          {e.label.padEnd(12)}
          {columns.map((c) => show(c, e.values[c]).padStart(10)).join('')}
        </Text>
      ))}
    </Box>
  );
}
