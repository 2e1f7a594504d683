import { describe, expect, it } from 'vitest';
import { planBatches } from '../../core/grpo/batch-plan.js';

describe('planBatches', () => {
  it('accepts a generation batch that is a multiple of num_generations', () => {
    const plan = planBatches({ numGenerations: 4, perDeviceBatchSize: 2, gradientAccumulationSteps: 4 });
    expect(plan).toMatchObject({ generationBatchSize: 8, promptsPerStep: 2, perDeviceBatchSize: 2, messages: [] });
  });
  it('rounds the per-device batch up to the next size that fits, and says so', () => {
    const plan = planBatches({ numGenerations: 8, perDeviceBatchSize: 1 });
    expect(plan.perDeviceBatchSize).toBe(8);
    expect(plan.promptsPerStep).toBe(1);
    expect(plan.messages[0]).toMatch(/not a multiple of num_generations = 8; per_device_train_batch_size raised from 1 to 8/);
    // 3 × 2 = 6 is not a multiple of 4; 4 × 2 = 8 is.
    expect(planBatches({ numGenerations: 4, perDeviceBatchSize: 3, gradientAccumulationSteps: 2 }).perDeviceBatchSize).toBe(4);
  });
  it("with onMismatch 'fail' says what to change", () => {
    expect(() => planBatches({ numGenerations: 6, perDeviceBatchSize: 4, gradientAccumulationSteps: 1, onMismatch: 'fail' })).toThrow(
      /4 × 1 = 4 is not a multiple of num_generations = 6: set per_device_train_batch_size to 6/,
    );
  });
  it('checks prompts per step against the generation batch', () => {
    expect(planBatches({ numGenerations: 4, perDeviceBatchSize: 8, promptsPerStep: 2 }).promptsPerStep).toBe(2);
    expect(() => planBatches({ numGenerations: 4, perDeviceBatchSize: 8, promptsPerStep: 3 })).toThrow(/set prompts_per_step to 2/);
    expect(() => planBatches({ numGenerations: 0, perDeviceBatchSize: 8 })).toThrow(/num_generations must be a positive integer/);
  });
});

describe("planBatches onMismatch 'unsloth'", () => {
  it('sets a per-device batch that is not a multiple of G to G, as Unsloth does', () => {
    const plan = planBatches({ numGenerations: 8, perDeviceBatchSize: 1, gradientAccumulationSteps: 4, onMismatch: 'unsloth' });
    expect(plan).toMatchObject({ perDeviceBatchSize: 8, generationBatchSize: 32, promptsPerStep: 4 });
    expect(plan.messages[0]).toMatch(/per_device_train_batch_size = 1 is not a multiple of num_generations = 8; set to 8 as Unsloth does/);
    expect(planBatches({ numGenerations: 4, perDeviceBatchSize: 8, gradientAccumulationSteps: 2, onMismatch: 'unsloth' }).messages).toEqual([]);
  });
});
