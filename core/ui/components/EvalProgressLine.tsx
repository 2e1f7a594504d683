// The evaluation running now: its label, a bar of samples done, and its time left.
import { Text } from 'ink';
import { formatDuration, progressBar } from '../format.js';
import type { EvalProgressState } from '../view-model.js';

export function EvalProgressLine({ progress, width = 20 }: { progress?: EvalProgressState; width?: number }) {
  if (!progress) return null;
  const fraction = progress.total > 0 ? progress.done / progress.total : 0;
  return (
    <Text>
      eval {progress.label} <Text color="yellow">{progressBar(fraction, width)}</Text> {progress.done}/{progress.total} samples
      <Text dimColor>
        {'  '}elapsed {formatDuration(progress.elapsedSeconds)}
        {progress.etaSeconds !== undefined ? `  left ${formatDuration(progress.etaSeconds)}` : ''}
      </Text>
    </Text>
  );
}
