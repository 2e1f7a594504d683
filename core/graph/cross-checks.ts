// Checks across nodes, made when the graph is validated (before any model is loaded): the trainer's
// batch arithmetic and temperature against the generator that feeds it. Found otherwise only when the first batch
// reaches the trainer, after the model load and a whole generation batch.
import { planBatches } from '../grpo/batch-plan.js';
import type { Diagnostic } from './diagnostics.js';
import type { ResolvedEdge, ResolvedNode } from './resolved.js';
import type { SourceMap } from './source.js';

interface TrainerConfig {
  num_generations: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  batch_mismatch: 'unsloth' | 'round-up' | 'fail';
  temperature: number;
}
interface GeneratorConfig {
  num_generations: number;
  prompts_per_batch: number;
  temperature: number;
}

/** The nearest node of `type` upstream of `node` along stream edges (feedback edges aside). */
function upstreamOfType(node: ResolvedNode, type: string, byId: Map<string, ResolvedNode>, edges: ResolvedEdge[]): ResolvedNode | undefined {
  const queue = [node.id];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const id = queue.shift()!;
    for (const edge of edges) {
      if (edge.to.node !== id || edge.kind !== 'stream' || edge.feedback || seen.has(edge.from.node)) continue;
      const from = byId.get(edge.from.node);
      if (!from) continue;
      if (from.type === type) return from;
      seen.add(from.id);
      queue.push(from.id);
    }
  }
  return undefined;
}

export function crossNodeChecks(nodes: ResolvedNode[], edges: ResolvedEdge[], map: SourceMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const trainer of nodes.filter((n) => n.type === 'train.grpo')) {
    const generator = upstreamOfType(trainer, 'rollout.generate', byId, edges);
    if (!generator) continue;
    const t = trainer.config as TrainerConfig;
    const g = generator.config as GeneratorConfig;
    const at = (field: string) => map.value(['nodes', trainer.id, 'with', field]);
    // The trainer's log-probs are of logits / its temperature; the behaviour log-probs are of the sampler's
    // distribution at its own. Different temperatures make every importance ratio (and the old log-probs'
    // meaning) wrong, silently. Greedy sampling (0) has no temperature to match.
    if (g.temperature > 0 && t.temperature !== g.temperature) {
      diagnostics.push({
        code: 'GRAPH_MISMATCH',
        severity: 'error',
        ...at('temperature'),
        message: `train.grpo ${trainer.id} computes log-probs at temperature ${t.temperature}, but its generator ${generator.id} samples at temperature ${g.temperature}`,
        suggestion: `set ${trainer.id}'s temperature to ${g.temperature} (the generator's)`,
      });
    }
    if (t.num_generations !== g.num_generations) {
      diagnostics.push({
        code: 'GRAPH_MISMATCH',
        severity: 'error',
        ...at('num_generations'),
        message: `train.grpo ${trainer.id} has num_generations ${t.num_generations}, but its generator ${generator.id} samples ${g.num_generations} per prompt`,
        suggestion: 'give both the same num_generations',
      });
      continue;
    }
    let promptsPerStep: number;
    try {
      promptsPerStep = planBatches({
        numGenerations: t.num_generations,
        perDeviceBatchSize: t.per_device_train_batch_size,
        gradientAccumulationSteps: t.gradient_accumulation_steps,
        onMismatch: t.batch_mismatch,
      }).promptsPerStep;
    } catch {
      continue; // reported by the trainer's own config check
    }
    if (promptsPerStep !== g.prompts_per_batch) {
      diagnostics.push({
        code: 'GRAPH_MISMATCH',
        severity: 'error',
        ...at('per_device_train_batch_size'),
        message:
          `one optimiser step of train.grpo ${trainer.id} takes ${promptsPerStep} prompts × ${t.num_generations} completions, ` +
          `but its generator ${generator.id} makes batches of prompts_per_batch ${g.prompts_per_batch}`,
        suggestion: `set ${generator.id}'s prompts_per_batch to ${promptsPerStep}, or per_device_train_batch_size × gradient_accumulation_steps to ${g.prompts_per_batch * t.num_generations}`,
      });
    }
  }
  return diagnostics;
}
