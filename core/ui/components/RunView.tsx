// The whole screen: finished log lines in <Static> (printed once, scrolled away like normal output)
// above a small live area that Ink redraws in place.
import { Box, Static, Text } from 'ink';
import type { LogLine, RunSnapshot } from '../view-model.js';
import { CompletionView } from './CompletionView.js';
import { EvalTable } from './EvalTable.js';
import { NodeTable } from './NodeTable.js';
import { ProgressBar } from './ProgressBar.js';
import { Sparklines } from './Sparklines.js';
import { Utilisation } from './Utilisation.js';

const LEVEL_COLOUR: Record<LogLine['level'], string> = { debug: 'gray', info: 'white', warn: 'yellow', error: 'red' };

export function LogLineView({ line }: { line: LogLine }) {
  const time = new Date(line.time).toISOString().slice(11, 19);
  return (
    <Text>
      <Text dimColor>{time} </Text>
      {line.node !== undefined && <Text color="blue">{line.node} </Text>}
      <Text color={LEVEL_COLOUR[line.level]}>{line.message}</Text>
    </Text>
  );
}

export function RunView({ snapshot }: { snapshot: RunSnapshot }) {
  const s = snapshot;
  return (
    <>
      <Static items={s.logs}>{(line) => <LogLineView key={line.id} line={line} />}</Static>
      <Box flexDirection="column" borderStyle="round" borderColor="gray" paddingX={1}>
        <Text bold color="magenta">
          {s.title}
        </Text>
        <ProgressBar step={s.step} totalSteps={s.totalSteps} secondsPerStep={s.secondsPerStep} etaSeconds={s.etaSeconds} elapsedSeconds={s.elapsedSeconds} />
        <NodeTable nodes={s.nodes} />
        <Sparklines series={s.series} />
        <Utilisation utilisation={s.utilisation} staleness={s.staleness} />
        <CompletionView completion={s.completion} />
        <EvalTable evals={s.evals} />
      </Box>
    </>
  );
}
