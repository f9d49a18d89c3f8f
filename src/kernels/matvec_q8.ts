import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './matvec_q8.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectQuantWeight, expectVectorOf } from './checks';
import { MATVEC_Q4_TUNING, type MatvecQ4Tuning } from './matvec_q4';

const kernel = defineKernel({ name: 'matvec_q8', source, libs: [lib.common, lib.matvecQuant] });

/** Rows one thread (TPR = 1) or one team of TPR lanes computes: fixed by the shader's vec4 accumulators. */
const ROWS_PER_TEAM = 4;

/**
 * y = W x for one token: W q8 (N, K) (out, in), x (K) or (1, K) f32|f16, y (N)
 * or (1, N) of x's dtype. The decode path of the LM head; see matvec_q8.wgsl.
 *
 * The work split is matvec_q4's, so are its tuning knobs and defaults
 * (MATVEC_Q4_TUNING: 8 lanes per team on a GPU, a barrier-free thread per 4
 * rows on a software adapter). Not timed for q8: a chunk holds 16 codes
 * instead of 32, so a lane does half the arithmetic per 16-byte load. G is an
 * override constant (in the pipeline key), as in q4. `tune` is for the timing
 * sweep and the tests.
 */
export function matvecQ8(rec: Recorder, w: Tensor, x: Tensor, y: Tensor, tune?: MatvecQ4Tuning): void {
  const op = 'matvec_q8';
  const [N, K] = expectQuantWeight(op, 'w', w, 'q8');
  const type = expectActivation(op, 'x', x);
  expectVectorOf(op, 'x', x, K, type);
  expectVectorOf(op, 'y', y, N, type);
  if (y.buffer === x.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with x '${x.label}'; an input bound read and an output bound read_write cannot alias`);
  const { WG, TPR } = tune ?? (rec.gpu.report.software ? MATVEC_Q4_TUNING.software : MATVEC_Q4_TUNING.gpu);
  if (!(Number.isInteger(WG) && Number.isInteger(TPR) && TPR >= 1 && WG % TPR === 0)) {
    throw new Error(`${op}: tuning WG ${WG}, TPR ${TPR} is invalid (TPR must be a positive divisor of WG)`);
  }
  const q8 = w.quant!;
  const kw = K / 4;
  const params = new Params(5).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q8.groupSize)).buffer;
  // The codes are read as vec4<u32>: round the binding up to 16 bytes, which
  // the 256-aligned scales offset leaves room for.
  const codesSize = Math.min(Math.ceil(q8.packedBytes / 16) * 16, q8.scalesOffset);
  if (codesSize % 16 !== 0) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} has no room to read its codes 16 bytes at a time`);
  const bindings = [{ tensor: w, offset: 0, size: codesSize }, { tensor: w, offset: q8.scalesOffset, size: q8.scalesBytes }, x, y];
  const rows = ROWS_PER_TEAM * (WG / TPR);
  kernel.dispatch(rec, { type, overrides: { WG, TPR, G: q8.groupSize } }, bindings, params, grid(Math.ceil(N / rows), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
