import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './sample.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectTokenOut, logitsRow } from './checks';

const kernel = defineKernel({ name: 'sample', source, libs: [lib.random] });

/** What sample() writes when no token can be drawn (every logit NaN or -inf). */
export const NO_TOKEN = 0xffffffff;

export interface SampleOptions {
  /** Divides the logits; > 0. Greedy decoding (temperature 0) is argmax(). */
  temperature: number;
  /** Keep every token scoring at least the k-th largest score (ties kept); 0 or absent = off. */
  topK?: number;
  /** Keep a token iff the tokens scoring strictly above it hold < topP of the probability; 1 or absent = off. */
  topP?: number;
  /** u32 seed of the random stream. */
  seed: number;
  /** u32 counter (the decode step): the uniform is a hash of (seed, step), so the pair fixes the token. */
  step: number;
}

/**
 * out[outIndex] = a token drawn from row `row` (default the last) of logits
 * (rows, V) or (V), with Hugging Face generate()'s temperature, top-k and
 * top-p, by inverse CDF in index order with u = uniform01(seed, step) (see
 * sample.wgsl, and sampleRef in reference/sampling.ts for the exact rules).
 * out is a (n) u32 tensor; NO_TOKEN is written when every logit is NaN or -inf.
 */
export function sample(rec: Recorder, logits: Tensor, out: Tensor, opts: SampleOptions, row?: number, outIndex = 0): void {
  const op = 'sample';
  const { type, dim, binding, base } = logitsRow(op, rec, logits, row);
  expectTokenOut(op, out, outIndex);
  const { temperature: t, topK = 0, topP = 1, seed, step } = opts;
  if (!(t > 0) || !Number.isFinite(t)) {
    throw new Error(`${op}: temperature must be a finite number > 0, got ${t}; for greedy decoding (temperature 0) use argmax()`);
  }
  const invTemp = Math.fround(1 / t);
  if (!Number.isFinite(invTemp)) throw new Error(`${op}: temperature ${t} is too small (1/temperature overflows f32); for greedy decoding use argmax()`);
  if (!Number.isInteger(topK) || topK < 0 || topK > 0xffffffff) throw new Error(`${op}: topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`${op}: topP must be in (0, 1] (1 = off), got ${topP}`);
  for (const [name, v] of [['seed', seed], ['step', step]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${op}: ${name} must be an integer in [0, 2^32), got ${v}`);
  }
  const params = new Params(8).u32(dim).u32(base).u32(outIndex).u32(topK).f32(topP).f32(invTemp).u32(seed).u32(step).buffer;
  kernel.dispatch(rec, { type, overrides: { WG: 256 } }, [binding, out], params, [1]);
}
