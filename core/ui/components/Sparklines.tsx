// Reward (and each reward function's), loss and KL over the last steps, each with its latest value.
import { Box, Text } from 'ink';
import { formatNumber, sparkline } from '../format.js';

export function Sparklines({ series }: { series: Record<string, readonly number[]> }) {
  const labelWidth = Math.max(7, ...Object.keys(series).map((name) => name.length + 1));
  return (
    <Box flexDirection="column">
      {Object.entries(series).map(([name, values]) => (
        <Text key={name}>
          {name.padEnd(labelWidth)}
          <Text color="cyan">{sparkline(values).padEnd(60)}</Text> {values.length > 0 ? formatNumber(values[values.length - 1]) : '-'}
        </Text>
      ))}
    </Box>
  );
}
