// dataset.map: rows → prompt records, by a declarative mapping or a map function from a file; then
// seeded shuffle, limit, train/test split and epochs. Held-out prompts leave on the `test` output.
import { concatMap, defer, EMPTY, filter, from, mergeMap, take, toArray, lastValueFrom, type Observable } from 'rxjs';
import { z } from 'zod';
import { emitLazily } from '../core/data/emit.js';
import { loadMapFunction, type AsyncRowMapper } from '../core/data/map-function.js';
import { compileMapping, mappingSchema } from '../core/data/mapping.js';
import { trainTestSplit } from '../core/data/split.js';
import { defineNode } from '../core/plugin.js';
import { ports, type DatasetRow, type PromptRecord } from '../core/ports.js';
import { Rng } from '../core/rng.js';

export const datasetMapConfig = z
  .strictObject({
    mapping: mappingSchema.optional().describe('Declarative mapping: system/user templates over row fields, and answer fields.'),
    function: z.string().optional().describe('A .ts/.js module (relative to the graph file) whose default export maps (data, row) to {messages, fields}.'),
    shuffle: z.boolean().default(false).describe('Shuffle the rows (seeded) before limit and split, and again each epoch.'),
    seed: z.number().int().default(0),
    limit: z.number().int().positive().optional().describe('Keep the first N rows (after shuffling).'),
    test_size: z.number().min(0).default(0).describe('Held-out rows for the `test` output: a fraction (< 1) or a count.'),
    epochs: z.union([z.number().int().positive(), z.literal('forever')]).default(1).describe('Passes over the training rows.'),
  })
  .refine((c) => (c.mapping === undefined) !== (c.function === undefined), { message: 'give exactly one of "mapping" or "function"' });

export type DatasetMapConfig = z.output<typeof datasetMapConfig>;

export const datasetMap = defineNode({
  type: 'dataset.map',
  version: 1,
  description: 'Maps dataset rows to prompt records (messages plus answer fields); seeded shuffle, limit, train/test split, epochs.',
  inputs: { rows: { type: ports.rows } },
  outputs: {
    prompts: { type: ports.prompts, description: 'Training prompts, `epochs` passes.' },
    test: { type: ports.prompts, description: 'Held-out prompts (test_size), emitted once; empty when test_size is 0.' },
  },
  config: datasetMapConfig,
  async run(ctx, inputs) {
    const c = ctx.config;
    const mapper: AsyncRowMapper = c.function !== undefined ? await loadMapFunction(c.function, ctx.baseDir) : syncToAsync(compileMapping(c.mapping!));
    const mapped = inputs.rows.pipe(
      concatMap((row) => from(mapper(row))),
      filter((record): record is PromptRecord => record !== null),
    );
    const buffered = c.shuffle || c.test_size > 0 || c.epochs !== 1;
    if (!buffered) return { prompts: c.limit !== undefined ? mapped.pipe(take(c.limit)) : mapped, test: EMPTY };

    // Shuffling and splitting need every row; both outputs share one pass over the input.
    let prepared: Promise<{ train: PromptRecord[]; test: PromptRecord[]; rng: Rng }> | undefined;
    // Without shuffling, rows past the limit are never needed: stop reading there.
    const needed = !c.shuffle && c.limit !== undefined ? mapped.pipe(take(c.limit)) : mapped;
    const prepare = () => (prepared ??= lastValueFrom(needed.pipe(toArray()), { defaultValue: [] }).then((all) => prepareSplits(all, c)));
    const test: Observable<PromptRecord> = defer(() => from(prepare())).pipe(mergeMap((p) => p.test));
    const prompts = emitLazily(ctx, async function* () {
      const { train, rng } = await prepare();
      if (train.length === 0) throw new Error(`dataset.map ${ctx.id}: no training rows`);
      for (let epoch = 0; c.epochs === 'forever' || epoch < c.epochs; epoch++) {
        // The first epoch keeps the order already shuffled in prepareSplits.
        const order = c.shuffle && epoch > 0 ? rng.shuffle([...train]) : train;
        yield* order;
      }
    });
    return { prompts, test };
  },
});

/** Shuffle (if asked), limit, then hold out the test split; returns the Rng for later epochs. */
export function prepareSplits(all: PromptRecord[], c: Pick<DatasetMapConfig, 'shuffle' | 'seed' | 'limit' | 'test_size'>) {
  const rng = new Rng(c.seed);
  const splitRng = rng.fork();
  const items = c.shuffle ? rng.shuffle([...all]) : all;
  const limited = c.limit !== undefined ? items.slice(0, c.limit) : items;
  const { train, test } = trainTestSplit(limited, c.test_size, splitRng);
  return { train, test, rng };
}

function syncToAsync(fn: (row: DatasetRow) => PromptRecord): AsyncRowMapper {
  return async (row) => fn(row);
}
