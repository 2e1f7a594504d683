// Step N/M, a bar, seconds per step and the time left (with the evaluations' share when there are any).
import { Text } from 'ink';
import { formatDuration, progressBar } from '../format.js';

export interface ProgressBarProps {
  step: number;
  totalSteps: number;
  secondsPerStep?: number;
  etaSeconds?: number;
  /** The evaluations' part of etaSeconds, when known. */
  evalEtaSeconds?: number;
  /** Evaluations still to run; with no evalEtaSeconds the ETA says it leaves them out. */
  evaluationsLeft?: number;
  elapsedSeconds: number;
  width?: number;
}

function evalNote(evalEtaSeconds: number | undefined, evaluationsLeft: number): string {
  if (evaluationsLeft <= 0) return '';
  return evalEtaSeconds !== undefined ? ` (eval ${formatDuration(evalEtaSeconds)})` : ' + eval';
}

export function ProgressBar({ step, totalSteps, secondsPerStep, etaSeconds, evalEtaSeconds, evaluationsLeft = 0, elapsedSeconds, width = 30 }: ProgressBarProps) {
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
        {etaSeconds !== undefined ? `  eta ${formatDuration(etaSeconds)}${evalNote(evalEtaSeconds, evaluationsLeft)}` : ''}
      </Text>
    </Text>
  );
}
