import { defineKernel, grid, type Kernel } from './kernel';
import { lib } from './lib';
import source from './matvec_q4.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectQuantWeight, expectVectorOf, vec4CodesBinding } from './checks';
import { matvecTuning, type MatvecTuning } from './tunings';

const kernel = defineKernel({ name: 'matvec_q4', source, libs: [lib.common, lib.matvecQuant] });

/** Tuning knobs (override constants): threads per workgroup, lanes per team of 4 rows (a divisor of WG); defaults per adapter in tunings.ts. */
export type MatvecQ4Tuning = MatvecTuning;

/** Rows one thread (TPR = 1) or one team of TPR lanes computes: fixed by the shader's vec4 accumulators. */
const ROWS_PER_TEAM = 4;

/**
 * y = W x for one token: W q4 (N, K) (out, in), x (K) or (1, K) f32|f16, y (N)
 * or (1, N) of x's dtype. The decode path; see matvec_q4.wgsl for the layout.
 *
 * G is an override constant (in the pipeline key) rather than a Params field:
 * it is fixed per weight, the shader then divides by a constant (a shift), and
 * at most three variants exist. `tune` is for the timing sweep and the tests.
 */
export function matvecQ4(rec: Recorder, w: Tensor, x: Tensor, y: Tensor, tune?: MatvecQ4Tuning): void {
  dispatchQuantMatvec(rec, kernel, 'q4', w, x, y, tune);
}

/** The dispatch of matvec_q4 and matvec_q8, which share their entry point (lib/matvec_quant.wgsl). */
export function dispatchQuantMatvec(rec: Recorder, k: Kernel, dtype: 'q4' | 'q8', w: Tensor, x: Tensor, y: Tensor, tune?: MatvecQ4Tuning): void {
  const op = k.name;
  const [N, K] = expectQuantWeight(op, 'w', w, dtype);
  const type = expectActivation(op, 'x', x);
  expectVectorOf(op, 'x', x, K, type);
  expectVectorOf(op, 'y', y, N, type);
  if (y.buffer === x.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with x '${x.label}'; an input bound read and an output bound read_write cannot alias`);
  const { WG, TPR } = tune ?? matvecTuning(rec.gpu.report);
  if (!(Number.isInteger(WG) && Number.isInteger(TPR) && TPR >= 1 && WG % TPR === 0)) {
    throw new Error(`${op}: tuning WG ${WG}, TPR ${TPR} is invalid (TPR must be a positive divisor of WG)`);
  }
  const q = w.quant!;
  const kw = K / (dtype === 'q4' ? 8 : 4); // code words per row
  const params = new Params(5).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q.groupSize)).buffer;
  const bindings = [vec4CodesBinding(op, w), { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, x, y];
  const rows = ROWS_PER_TEAM * (WG / TPR);
  k.dispatch(rec, { type, overrides: { WG, TPR, G: q.groupSize } }, bindings, params, grid(Math.ceil(N / rows), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
