// The most recent sampled completion and the rewards it got.
import { Box, Text } from 'ink';
import { formatNumber } from '../format.js';
import type { SampledCompletion } from '../types.js';

export function CompletionView({ completion, maxLines = 4, maxChars = 400 }: { completion?: SampledCompletion; maxLines?: number; maxChars?: number }) {
  if (!completion) return <Text dimColor>no completion sampled yet</Text>;
  const clipped = completion.text.length > maxChars ? completion.text.slice(0, maxChars) + '…' : completion.text;
  const lines = clipped.split('\n');
  const shown = lines.length > maxLines ? [...lines.slice(0, maxLines - 1), `… (${lines.length - maxLines + 1} more lines)`] : lines;
  const rewards = Object.entries(completion.rewards);
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>latest completion</Text>
        {completion.step !== undefined ? ` (step ${completion.step})` : ''}
        {rewards.map(([name, value]) => (
          <Text key={name}>
            {'  '}
            {name} <Text color={value > 0 ? 'green' : 'red'}>{formatNumber(value)}</Text>
          </Text>
        ))}
      </Text>
      {completion.prompt !== undefined && <Text dimColor>{completion.prompt.split('\n').at(-1)}</Text>}
      {shown.map((line, i) => (
        <Text key={i}>{line}</Text>
      ))}
    </Box>
  );
}
