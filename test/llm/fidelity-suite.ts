// The fidelity suite (run by model-cpu.test.ts and model-wasm.test.ts): the transformer against transformers/peft reference outputs (llama-tiny), on cpu and wasm:
// full forward, chunked log-probs, greedy decoding by repeated forward and through the KV cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import { loadPeftAdapter, mergeLora } from '../../engines/tfjs/lora.js';
import { LLAMA_TINY, argMax, ids2d, logSoftmaxAt, maxAbsDiff, readReference, type ReferenceChat } from './fixture.js';

const reference = readReference();
const TOL = 1e-4;

type Variant = 'chats' | 'adapter' | 'merged';

async function modelFor(variant: Variant): Promise<CausalLM> {
  const model = await loadModel(LLAMA_TINY);
  if (variant !== 'chats') loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
  if (variant === 'merged') mergeLora(model);
  return model;
}

function lastLogits(model: CausalLM, ids: number[]): Float32Array {
  return tf.tidy(() => model.forward(ids2d([ids])).slice([0, ids.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array);
}

function sequenceLogprobs(model: CausalLM, chat: ReferenceChat): Float32Array {
  const all = [...chat.ids, ...chat.greedy];
  return tf.tidy(() => {
    const h = model.hidden(ids2d([all.slice(0, -1)]));
    // a small chunk so several chunks are exercised
    return model.tokenLogprobs(h, ids2d([all.slice(1)]), { chunkSize: 37 }).logprobs.dataSync() as Float32Array;
  });
}

/**
 * The fidelity suite on one backend. `fullGreedyVariants` limits the greedy-by-repeated-forward check
 * (slow on cpu, where it also runs on the shortest chat only); every variant is always checked through
 * logits, log-probs and the KV-cache path.
 */
export function fidelitySuite(backend: 'cpu' | 'wasm', fullGreedyVariants: Variant[] = ['chats', 'adapter', 'merged']): void {
  describe(`llama-tiny on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    for (const variant of ['chats', 'adapter', 'merged'] as const) {
      describe(variant === 'chats' ? 'base' : variant, () => {
        let model: CausalLM;
        const cases = reference[variant];
        beforeAll(async () => {
          model = await modelFor(variant);
        });
        afterAll(() => model.dispose());

        it('last-position logits match transformers within 1e-4', () => {
          for (const chat of cases) expect(maxAbsDiff(lastLogits(model, chat.ids), chat.last_logits)).toBeLessThan(TOL);
        });

        it('sequence log-probs over ids + greedy match within 1e-4', () => {
          for (const chat of cases) {
            const lp = sequenceLogprobs(model, chat);
            expect(lp.length).toBe(chat.sequence_logprobs.length);
            expect(maxAbsDiff(lp, chat.sequence_logprobs)).toBeLessThan(TOL);
          }
        });

        it.runIf(fullGreedyVariants.includes(variant))('greedy decoding by repeated full forward (left-padded batch) reproduces the reference tokens', () => {
          // on the slow cpu backend, only the shortest chat
          const chosen = backend === 'cpu' ? [cases.reduce((a, b) => (b.ids.length < a.ids.length ? b : a))] : cases;
          const seqs = chosen.map((c) => [...c.ids]);
          for (let step = 0; step < 12; step++) {
            const longest = Math.max(...seqs.map((q) => q.length));
            const rows = seqs.map((q) => [...new Array(longest - q.length).fill(0), ...q]);
            const mask = seqs.map((q) => [...new Array(longest - q.length).fill(0), ...new Array(q.length).fill(1)]);
            const last = tf.tidy(() => model.forward(ids2d(rows), ids2d(mask)).slice([0, longest - 1, 0], [-1, 1, -1]).reshape([seqs.length, -1]).arraySync() as number[][]);
            seqs.forEach((q, i) => q.push(argMax(last[i])));
          }
          chosen.forEach((c, i) => expect(seqs[i].slice(c.ids.length)).toEqual(c.greedy));
        });

        // The KV cache written in place (wasm, cpu) and by copy (what the GPU backends do).
        for (const inPlace of [true, false]) {
          const writes = inPlace ? 'written in place' : 'written by copy';
          it(`prefill + decode (one slot at a time) reproduces greedy tokens and log-probs; cache ${writes}`, () => {
            const cache = model.newCache(2, 256, { inPlace });
            for (const chat of cases) {
              const all = [...chat.ids, ...chat.greedy];
              let logits = model.prefill(cache, 1, chat.ids);
              for (let i = 0; i < chat.greedy.length; i++) {
                const row = logits.dataSync() as Float32Array;
                logits.dispose();
                expect(argMax(row)).toBe(chat.greedy[i]);
                const at = chat.ids.length - 1 + i;
                expect(Math.abs(logSoftmaxAt(row, all[at + 1]) - chat.sequence_logprobs[at])).toBeLessThan(TOL);
                if (i === chat.greedy.length - 1) break;
                const next = model.decode(cache, [1], [chat.greedy[i]]);
                logits = next.reshape([-1]);
                next.dispose();
              }
              model.release(cache, 1);
            }
            model.disposeCache(cache);
          });

          it(`copySlots: a prompt prefilled once, copied to two more slots, decodes the reference in all three; cache ${writes}`, () => {
            const cache = model.newCache(4, 256, { inPlace });
            const chat = cases[0];
            const first = model.prefill(cache, 3, chat.ids);
            const token = argMax(first.dataSync());
            first.dispose();
            model.prefill(cache, 1, cases[1].ids).dispose(); // something else in a slot that gets overwritten
            model.copySlots(cache, [3, 3], [0, 1]);
            const produced = [[token], [token], [token]];
            for (let i = 0; i < 4; i++) {
              const logits = model.decode(cache, [0, 1, 3], produced.map((p) => p[p.length - 1]));
              const rows = logits.arraySync() as number[][];
              logits.dispose();
              rows.forEach((row, j) => produced[j].push(argMax(row)));
            }
            for (const p of produced) expect(p).toEqual(chat.greedy.slice(0, 5));
            model.disposeCache(cache);
          });

          it(`a slot left out of a decode step keeps its cache and continues where it was; cache ${writes}`, () => {
            const cache = model.newCache(3, 256, { inPlace });
            const [a, b] = cases;
            const rows = model.prefillMany(cache, [0, 2], [a.ids, b.ids]);
            const first = rows.arraySync() as number[][];
            rows.dispose();
            const produced = [[argMax(first[0])], [argMax(first[1])]];
            const step = (slots: number[], which: number[]) => {
              const logits = model.decode(cache, slots, which.map((w) => produced[w][produced[w].length - 1]));
              const out = logits.arraySync() as number[][];
              logits.dispose();
              which.forEach((w, i) => produced[w].push(argMax(out[i])));
            };
            for (let i = 0; i < 3; i++) step([2], [1]); // slot 0 waits
            for (let i = 0; i < 4; i++) step([2, 0], [1, 0]); // both, out of slot order
            expect(produced[0]).toEqual(a.greedy.slice(0, 5));
            expect(produced[1]).toEqual(b.greedy.slice(0, 8));
            model.disposeCache(cache);
          });

          it(`continuous batching: sequences at their own positions, a freed slot taken by a waiting prompt; cache ${writes}`, () => {
            interface Sequence { chat: number; slot: number; produced: number[]; stopAfter: number }
            const cache = model.newCache(3, 256, { inPlace });
            const start = (chat: number, slot: number, row: ArrayLike<number>, stopAfter = 12): Sequence => ({ chat, slot, produced: [argMax(row)], stopAfter });
            const first = model.prefillMany(cache, [2, 0, 1], cases.map((c) => c.ids));
            const firstRows = first.arraySync() as number[][];
            first.dispose();
            // chat 0 "hits eos" after 4 tokens; a second copy of chat 0 waits for a free slot
            let active = [start(0, 2, firstRows[0], 4), start(1, 0, firstRows[1]), start(2, 1, firstRows[2])];
            const waiting = [0];
            const finished: Sequence[] = [];
            while (active.length > 0) {
              const done = active.filter((q) => q.produced.length >= q.stopAfter);
              for (const q of done) {
                finished.push(q);
                model.release(cache, q.slot);
                const chat = waiting.shift();
                if (chat !== undefined) {
                  const row = model.prefill(cache, q.slot, cases[chat].ids);
                  active.push(start(chat, q.slot, row.dataSync()));
                  row.dispose();
                }
              }
              active = active.filter((q) => !done.includes(q));
              if (active.length === 0) break;
              const logits = model.decode(cache, active.map((q) => q.slot), active.map((q) => q.produced[q.produced.length - 1]));
              const rows = logits.arraySync() as number[][];
              logits.dispose();
              active.forEach((q, i) => q.produced.push(argMax(rows[i])));
            }
            expect(finished.map((q) => q.chat).sort()).toEqual([0, 0, 1, 2]);
            for (const q of finished) expect(q.produced).toEqual(cases[q.chat].greedy.slice(0, q.stopAfter));
            model.disposeCache(cache);
          });
        }

        it('a left-padded batch gives each sequence its unpadded logits', () => {
          const longest = Math.max(...cases.map((c) => c.ids.length));
          const rows = cases.map((c) => [...new Array(longest - c.ids.length).fill(0), ...c.ids]);
          const mask = cases.map((c) => [...new Array(longest - c.ids.length).fill(0), ...new Array(c.ids.length).fill(1)]);
          const last = tf.tidy(() => model.forward(ids2d(rows), ids2d(mask)).slice([0, longest - 1, 0], [-1, 1, -1]).reshape([cases.length, -1]).arraySync() as number[][]);
          cases.forEach((c, i) => expect(maxAbsDiff(last[i], c.last_logits)).toBeLessThan(TOL));
        });
      });
    }

    it.each([true, false])('tf.memory().numTensors does not grow across prefill/decode/release cycles (in place: %s)', async (inPlace) => {
      const model = await modelFor('adapter');
      const cache = model.newCache(3, 64, { inPlace });
      const cycle = () => {
        model.prefill(cache, 0, [1000, 5, 6, 7]).dispose();
        model.prefillMany(cache, [1, 2], [[1000, 9], [1000, 10, 11]]).dispose();
        for (let i = 0; i < 3; i++) model.decode(cache, [0, 2], [12 + i, 20 + i]).dispose();
        model.release(cache, 0);
        model.release(cache, 1);
        model.release(cache, 2);
      };
      cycle();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) cycle();
      expect(tf.memory().numTensors).toBe(before);
      model.disposeCache(cache);
      model.dispose();
    });
  });
}
