// How busy the generator and the trainer are, and how stale the batches the trainer consumes.
import { Text } from 'ink';
import { sparkline } from '../format.js';

export function Utilisation({ utilisation, staleness }: { utilisation: readonly { node: string; busy: number }[]; staleness: readonly number[] }) {
  if (utilisation.length === 0 && staleness.length === 0) return null;
  return (
    <Text>
      {utilisation.map((u) => (
        <Text key={u.node}>
          {u.node} busy <Text color={u.busy > 0.8 ? 'green' : 'yellow'}>{Math.round(u.busy * 100)}%</Text>
          {'  '}
        </Text>
      ))}
      {staleness.length > 0 && (
        <Text>
          staleness {staleness[staleness.length - 1]} (max {Math.max(...staleness)}) <Text color="cyan">{sparkline(staleness.slice(-20))}</Text>
        </Text>
      )}
    </Text>
  );
}
