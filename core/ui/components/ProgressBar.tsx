// Step N/M, a bar, seconds per step and the time left.
import { Text } from 'ink';
import { formatDuration, progressBar } from '../format.js';

export interface ProgressBarProps {
  step: number;
  totalSteps: number;
  secondsPerStep?: number;
  etaSeconds?: number;
  elapsedSeconds: number;
  width?: number;
}

export function ProgressBar({ step, totalSteps, secondsPerStep, etaSeconds, elapsedSeconds, width = 30 }: ProgressBarProps) {
  const fraction = totalSteps > 0 ? step / totalSteps : 0;
  if (totalSteps <= 0) {
    return (
      <Text>
        step {step}
        <Text dimColor>
          {'  '}
          {secondsPerStep !== undefined ? `${secondsPerStep.toFixed(1)}s/step  ` : ''}elapsed {formatDuration(elapsedSeconds)}
        </Text>
      </Text>
    );
  }
  return (
    <Text>
      step {step}/{totalSteps} <Text color="green">{progressBar(fraction, width)}</Text> {Math.floor(fraction * 100)}%
      <Text dimColor>
        {'  '}
        {secondsPerStep !== undefined ? `${secondsPerStep.toFixed(1)}s/step  ` : ''}elapsed {formatDuration(elapsedSeconds)}
        {etaSeconds !== undefined ? `  eta ${formatDuration(etaSeconds)}` : ''}
      </Text>
    </Text>
  );
}
