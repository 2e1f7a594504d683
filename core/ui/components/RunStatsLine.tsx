// The numbers worth a glance beside the curves: learning rate, gradient norm, generation and training
// throughput, mean completion length, and the process's memory.
import { Text } from 'ink';
import { formatBytes, formatNumber } from '../format.js';
import type { RunStats } from '../view-model.js';

export function RunStatsLine({ stats }: { stats: RunStats }) {
  const parts: [string, string][] = [];
  if (stats.learningRate !== undefined) parts.push(['lr', formatNumber(stats.learningRate)]);
  if (stats.gradNorm !== undefined) parts.push(['grad norm', formatNumber(stats.gradNorm)]);
  if (stats.generationTokensPerSecond !== undefined) parts.push(['gen', `${formatNumber(Math.round(stats.generationTokensPerSecond))} tok/s`]);
  if (stats.trainingTokensPerSecond !== undefined) parts.push(['train', `${formatNumber(Math.round(stats.trainingTokensPerSecond))} tok/s`]);
  if (stats.completionLength !== undefined) parts.push(['length', formatNumber(stats.completionLength)]);
  parts.push(['rss', formatBytes(stats.rssBytes)]);
  return (
    <Text>
      {parts.map(([name, value], i) => (
        <Text key={name}>
          {i > 0 ? '  ' : ''}
          <Text dimColor>{name}</Text> {value}
        </Text>
      ))}
    </Text>
  );
}
