// Batch arithmetic checked when a graph is validated. One optimiser step consumes a generation batch of
// perDeviceBatchSize × gradientAccumulationSteps completions = promptsPerStep × numGenerations; every
// prompt's G completions must land in the same generation batch for group-relative advantages.
export interface BatchPlanInput {
  numGenerations: number;
  perDeviceBatchSize: number;
  gradientAccumulationSteps?: number;
  /** When given, must match the generation batch (after any rounding). */
  promptsPerStep?: number;
  /**
   * When the generation batch does not hold whole groups: 'round-up' raises perDeviceBatchSize to the next
   * size that fits; 'unsloth' applies Unsloth's rule (a perDeviceBatchSize that is not a multiple of
   * num_generations becomes num_generations, so 1 × 4 accumulation with G 8 trains 4 prompts × 8 per
   * step); 'fail' refuses, saying what to change.
   */
  onMismatch?: 'round-up' | 'unsloth' | 'fail';
}

export interface BatchPlan {
  numGenerations: number;
  perDeviceBatchSize: number;
  gradientAccumulationSteps: number;
  /** Completions per optimiser step. */
  generationBatchSize: number;
  promptsPerStep: number;
  /** Human-readable notes on what was changed (empty when nothing was). */
  messages: string[];
}

export class BatchPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BatchPlanError';
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new BatchPlanError(`${name} must be a positive integer (got ${value})`);
}

export function planBatches(input: BatchPlanInput): BatchPlan {
  const G = input.numGenerations;
  const accumulation = input.gradientAccumulationSteps ?? 1;
  let batch = input.perDeviceBatchSize;
  positiveInteger('num_generations', G);
  positiveInteger('per_device_train_batch_size', batch);
  positiveInteger('gradient_accumulation_steps', accumulation);
  if (input.promptsPerStep !== undefined) positiveInteger('prompts_per_step', input.promptsPerStep);
  const messages: string[] = [];

  if ((input.onMismatch ?? 'round-up') === 'unsloth' && batch % G !== 0) {
    messages.push(
      `per_device_train_batch_size = ${batch} is not a multiple of num_generations = ${G}; set to ${G} as Unsloth does ` +
        `(generation batch ${G} × ${accumulation} = ${G * accumulation} completions = ${accumulation} prompts × ${G})`,
    );
    batch = G;
  }
  if ((batch * accumulation) % G !== 0) {
    // Smallest batch ≥ the requested one with batch × accumulation a multiple of G.
    let fitted = batch;
    while ((fitted * accumulation) % G !== 0) fitted++;
    if ((input.onMismatch ?? 'round-up') === 'fail') {
      throw new BatchPlanError(
        `the generation batch per_device_train_batch_size × gradient_accumulation_steps = ${batch} × ${accumulation} = ${batch * accumulation} ` +
          `is not a multiple of num_generations = ${G}: set per_device_train_batch_size to ${fitted}, or num_generations to a divisor of ${batch * accumulation}`,
      );
    }
    messages.push(
      `per_device_train_batch_size × gradient_accumulation_steps = ${batch * accumulation} is not a multiple of num_generations = ${G}; ` +
        `per_device_train_batch_size raised from ${batch} to ${fitted} (generation batch ${fitted * accumulation} = ${(fitted * accumulation) / G} prompts × ${G})`,
    );
    batch = fitted;
  }
  const generationBatchSize = batch * accumulation;
  const promptsPerStep = generationBatchSize / G;
  if (input.promptsPerStep !== undefined && input.promptsPerStep !== promptsPerStep) {
    throw new BatchPlanError(
      `prompts_per_step = ${input.promptsPerStep} with num_generations = ${G} makes ${input.promptsPerStep * G} completions per step, but ` +
        `per_device_train_batch_size × gradient_accumulation_steps = ${batch} × ${accumulation} = ${generationBatchSize}: ` +
        `set prompts_per_step to ${promptsPerStep}, or per_device_train_batch_size × gradient_accumulation_steps to ${input.promptsPerStep * G}`,
    );
  }
  return { numGenerations: G, perDeviceBatchSize: batch, gradientAccumulationSteps: accumulation, generationBatchSize, promptsPerStep, messages };
}
