// The whole screen: finished log lines in <Static> (printed once, scrolled away like normal output)
// above a small live area that Ink redraws in place.
import { Box, Static, Text } from 'ink';
import type { LogLine, RunSnapshot } from '../view-model.js';
import { CompletionView } from './CompletionView.js';
import { EvalProgressLine } from './EvalProgressLine.js';
import { EvalTable } from './EvalTable.js';
import { NodeTable } from './NodeTable.js';
import { ProgressBar } from './ProgressBar.js';
import { RunStatsLine } from './RunStatsLine.js';
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

/** Reward, then one line per reward function (indented under it), loss and KL. */
export function sparklineSeries(s: RunSnapshot): Record<string, readonly number[]> {
  const perFunction = Object.entries(s.rewardSeries).map(([name, values]) => [`  ${name}`, values] as const);
  return { reward: s.series.reward, ...Object.fromEntries(perFunction), loss: s.series.loss, kl: s.series.kl };
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
        <ProgressBar
          step={s.step}
          totalSteps={s.totalSteps}
          secondsPerStep={s.secondsPerStep}
          etaSeconds={s.etaSeconds}
          evalEtaSeconds={s.evalEtaSeconds}
          evaluationsLeft={s.evaluationsLeft}
          elapsedSeconds={s.elapsedSeconds}
        />
        <EvalProgressLine progress={s.evalProgress} />
        <NodeTable nodes={s.nodes} />
        <Sparklines series={sparklineSeries(s)} />
        <RunStatsLine stats={s.stats} />
        <Utilisation utilisation={s.utilisation} staleness={s.staleness} />
        <CompletionView completion={s.completion} />
        <EvalTable evals={s.evals} />
      </Box>
    </>
  );
}
