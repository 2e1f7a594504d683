// The tfjs policy trainer: GRPO optimiser steps on a CausalLM's LoRA weights (grpo/train-step.ts),
// behind the PolicyTrainer interface. It owns its model's adapter weights: nothing else changes them,
// and they leave only as plain versioned values (weights(), save()).
import type { PolicyTrainer, PolicyWeights, ScoreOptions, StepRows, TrainerState } from '../../core/engine/interfaces.js';
import type { Rows, TokenLogprobs } from '../../core/engine/rows.js';
import type { TrainStepConfig } from '../../core/grpo/loss-spec.js';
import type { AdamWState } from './grpo/optimizer.js';
import { GrpoTrainer, type GrpoTrainerConfig } from './grpo/train-step.js';
import { loadLoraSnapshot, loraSnapshotAsync } from './lora.js';
import type { CausalLM } from './model.js';
import type { RngState } from '../../core/rng.js';

export class TfjsPolicyTrainer implements PolicyTrainer {
  private readonly trainer: GrpoTrainer;

  constructor(
    private readonly model: CausalLM,
    config: GrpoTrainerConfig,
  ) {
    if (!model.lora) throw new Error('the model has no LoRA adapter (the tfjs policy trainer trains LoRA weights)');
    this.trainer = new GrpoTrainer(model, config);
  }

  get version(): number {
    return this.trainer.step;
  }

  get numTokensSeen(): number {
    return this.trainer.numTokensSeen;
  }

  step(rows: StepRows, spec: TrainStepConfig): Promise<Record<string, number>> {
    return this.trainer.trainStep(rows, spec);
  }

  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return this.trainer.score(rows, options);
  }

  async weights(): Promise<PolicyWeights> {
    const version = this.version;
    return { version, weights: await loraSnapshotAsync(this.model) };
  }

  async save(): Promise<TrainerState> {
    const weights = this.weights();
    const optimizer = this.trainer.optimizer.exportState();
    return {
      weights: await weights,
      optimizer: await optimizer,
      rngStates: { dropout: this.model.dropoutRngState() },
      numTokensSeen: this.trainer.numTokensSeen,
    };
  }

  /** Puts a saved state back; a state without an optimiser (`optimizer: undefined`) restores the weights only. */
  restore(state: TrainerState, where = 'trainer state'): void {
    loadLoraSnapshot(this.model, state.weights.weights, where);
    if (state.optimizer !== undefined) this.trainer.importState({ optimizer: state.optimizer as AdamWState, numTokensSeen: state.numTokensSeen });
    const dropout = state.rngStates.dropout;
    if (dropout) this.model.setDropoutRngState(dropout);
  }

  /** Seeds LoRA dropout (a fresh run; a restored one takes the checkpoint's state). */
  seedDropout(state: RngState): void {
    this.model.setDropoutRngState(state);
  }

  dispose(): void {
    this.trainer.dispose();
  }
}
