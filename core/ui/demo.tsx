// A look at the terminal UI without a model: fake metrics, events and node states at run speed.
//   npx tsx core/ui/demo.tsx [steps] [--plain]
// Ctrl-C behaves as in a real run: the process's SIGINT handler stops the feed and unmounts.
import { interval, map, Subject, take } from 'rxjs';
import { createPlainProgress } from './plain-progress.js';
import { renderRunUi } from './render.js';
import type { MetricRecord, UiEvent, UiNodeState } from './types.js';
import { Rng } from '../rng.js';

const totalSteps = Number(process.argv[2] ?? 60);
const plain = process.argv.includes('--plain') || !process.stdout.isTTY;
const rng = new Rng(1);
const metrics$ = new Subject<MetricRecord>();
const events$ = new Subject<UiEvent>();
const nodeStates$ = new Subject<UiNodeState[]>();

const graph = [
  ['model', 'model.load'],
  ['lora', 'model.lora'],
  ['data', 'dataset.synthetic'],
  ['rollout', 'rollout.generate'],
  ['reward_format', 'reward.format'],
  ['reward_correct', 'reward.correctness'],
  ['advantages', 'grpo.advantages'],
  ['trainer', 'train.grpo'],
  ['eval', 'eval.accuracy'],
] as const;
const counts = new Map<string, number>(graph.map(([id]) => [id, 0]));

const ui = plain
  ? createPlainProgress({ metrics$, events$, totalSteps, title: 'grpoflow demo (plain)' })
  : renderRunUi({ metrics$, events$, nodeStates$, totalSteps, plannedEvaluations: 2, title: 'grpoflow · demo (fake metrics)' });

events$.next({ level: 'info', node: 'graph', message: `run started: ${graph.length} nodes` });
for (let done = 0; done <= 400; done += 40) events$.next({ level: 'debug', node: 'eval', message: 'eval before', data: { evalProgress: { label: 'before', done, total: 400 } } });
events$.next({ level: 'info', node: 'eval', message: 'eval before: accuracy 12.0%', data: { eval: { label: 'before', accuracy: 0.12, 'pass@4': 0.3, n: 100 } } });

const ticker = interval(250)
  .pipe(
    take(totalSteps),
    map((i) => i + 1),
  )
  .subscribe({
    next(step) {
      for (const [id] of graph) counts.set(id, counts.get(id)! + (id === 'data' ? 8 : id === 'model' || id === 'lora' ? 0 : 1));
      nodeStates$.next(
        graph.map(([id, type]): UiNodeState => ({
          id,
          type,
          status: id === 'model' || id === 'lora' ? 'done' : 'running',
          itemsIn: counts.get(id)!,
          itemsOut: id === 'model' || id === 'lora' ? 1 : counts.get(id)!,
          queues: id === 'rollout' ? { prompts: { depth: rng.int(4), capacity: 4 } } : id === 'trainer' ? { batches: { depth: rng.int(2), capacity: 2 } } : {},
        })),
      );
      const reward = 1 + (2.5 * step) / totalSteps + rng.normal() * 0.2;
      metrics$.next({ step, node: 'reward_format', values: { reward } });
      metrics$.next({ step, node: 'rollout', values: { busy: 0.85 + rng.next() * 0.1, 'rollout/tokens_per_s': 450 + rng.next() * 50 } });
      metrics$.next({
        step,
        node: 'trainer',
        values: {
          loss: 0.05 / Math.sqrt(step) + rng.next() * 0.01,
          kl: 0.001 * step * (1 + rng.next()),
          busy: 0.6 + rng.next() * 0.2,
          staleness: rng.int(2),
          'rewards/format/mean': Math.min(3, 1.5 + (3 * step) / totalSteps),
          'rewards/correctness/mean': -1 + (2 * step) / totalSteps + rng.normal() * 0.2,
          learning_rate: 5e-4 * 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps)),
          grad_norm: 0.1 + rng.next() * 0.05,
          'completions/mean_length': 50 + rng.normal() * 2,
          num_tokens: 7000,
          step_time: 0.25,
        },
      });
      const a = 2 + rng.int(8);
      const b = 2 + rng.int(8);
      events$.next({ level: 'debug', node: 'rollout', message: 'sample', data: { step, prompt: `Tom has ${a} apples and buys ${b} more. How many apples does he have?`, completion: `<reasoning>${a} + ${b} = ${a + b}</reasoning><answer>${a + b}</answer>`, rewards: { format: 3, correctness: 2 } } });
      if (step % 20 === 0) events$.next({ level: 'info', node: 'trainer', message: `checkpoint written: out/checkpoint-${step}` });
    },
    complete() {
      events$.next({ level: 'info', node: 'eval', message: 'eval after: accuracy 47.0%', data: { eval: { label: 'after', accuracy: 0.47, 'pass@4': 0.71, n: 100 } } });
      setTimeout(() => {
        ui.unmount();
        console.log('demo finished');
      }, 300);
    },
  });

process.on('SIGINT', () => {
  ticker.unsubscribe();
  events$.next({ level: 'warn', node: 'graph', message: 'interrupted: stopping and writing a checkpoint' });
  setTimeout(() => {
    ui.unmount();
    console.log('stopped cleanly after Ctrl-C');
    process.exit(130);
  }, 200);
});
