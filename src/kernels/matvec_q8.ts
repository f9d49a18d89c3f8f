import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matvec_q8.wgsl?raw';
import type { Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { dispatchQuantMatvec, type MatvecQ4Tuning } from './matvec_q4';

const kernel = defineKernel({ name: 'matvec_q8', source, libs: [lib.common, lib.matvecQuant] });

/**
 * y = W x for one token: W q8 (N, K) (out, in), x (K) or (1, K) f32|f16, y (N)
 * or (1, N) of x's dtype. The decode path of the LM head; see matvec_q8.wgsl.
 *
 * The work split is matvec_q4's, so are its tuning knobs and defaults
 * (tunings.ts: 8 lanes per team on a GPU, a barrier-free thread per 4 rows
 * on a software adapter). Not timed for q8: a chunk holds 16 codes
 * instead of 32, so a lane does half the arithmetic per 16-byte load. G is an
 * override constant (in the pipeline key), as in q4. `tune` is for the timing
 * sweep and the tests.
 */
export function matvecQ8(rec: Recorder, w: Tensor, x: Tensor, y: Tensor, tune?: MatvecQ4Tuning): void {
  dispatchQuantMatvec(rec, kernel, 'q8', w, x, y, tune);
}
