import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './moe_matvec_q4.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectQuantWeight, vec4CodesBinding } from './checks';
import { matvecTuning, type MatvecTuning } from './tunings';
import { MOE_MAX_EXPERTS } from './moe_router';

const kernel = defineKernel({ name: 'moe_matvec_q4', source, libs: [lib.common] });

/** Rows one thread (TPR = 1) or one team of TPR lanes computes, as matvec_q4. */
const ROWS_PER_TEAM = 4;

/**
 * The experts of one token (decode): y[j] = W[ids[j]] x_j for the k slots,
 * reading only the routed experts' rows. w: the E experts of one projection
 * stacked as one q4 weight (E * N, K) (gpu.uploadQ4(quantizeQ4(stacked, E * N, K, G)));
 * x: (K) or (1, K) shared by the slots (gate, up), or (k, K) one row per slot
 * (down); ids: (k) or (1, k) u32 (moe_router's output for the token, on the
 * GPU); y: (k, N) of x's dtype. An id >= E gives a row of NaN. The work split
 * and tuning are matvec_q4's (tunings.ts).
 */
export function moeMatvecQ4(rec: Recorder, w: Tensor, x: Tensor, ids: Tensor, y: Tensor, experts: number, tune?: MatvecTuning): void {
  const op = 'moe_matvec_q4';
  const [rows, K] = expectQuantWeight(op, 'w', w, 'q4');
  const type = expectActivation(op, 'x', x);
  ids.assertAlive(op);
  if (ids.dtype !== 'u32' || !(ids.shape.length === 1 || (ids.shape.length === 2 && ids.shape[0] === 1))) {
    throw new Error(`${op}: ids '${ids.label}' ${fmtShape(ids.shape)} ${ids.dtype} must be (k) or (1, k) u32`);
  }
  const k = ids.shape[ids.shape.length - 1];
  if (!(Number.isInteger(experts) && experts >= 1 && experts <= MOE_MAX_EXPERTS)) throw new Error(`${op}: experts = ${experts} must be an integer in 1 .. ${MOE_MAX_EXPERTS}`);
  if (k > experts) throw new Error(`${op}: k = ${k} (ids '${ids.label}' ${fmtShape(ids.shape)}) exceeds the E = ${experts} experts`);
  y.assertAlive(op);
  if (y.dtype !== type || y.shape.length !== 2 || y.shape[0] !== k) throw new Error(`${op}: y '${y.label}' ${fmtShape(y.shape)} ${y.dtype} must be (k, N) = (${k}, N) ${type}`);
  const N = y.shape[1];
  if (rows !== experts * N) {
    throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} is not E = ${experts} experts of N = ${N} rows (y '${y.label}' ${fmtShape(y.shape)}): expected (${experts * N}, ${K})`);
  }
  const xRows = x.numel / K;
  const shared = (x.shape.length === 1 && x.shape[0] === K) || (x.shape.length === 2 && x.shape[0] === 1 && x.shape[1] === K);
  const perSlot = x.shape.length === 2 && x.shape[0] === k && x.shape[1] === K;
  if (!shared && !perSlot) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (${K}) or (1, ${K}) shared by the slots, or (${k}, ${K}) one per slot (w '${w.label}' ${fmtShape(w.shape)})`);
  for (const [name, t] of [['x', x], ['ids', ids]] as const) {
    if (y.buffer === t.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with ${name} '${t.label}'; an input bound read and an output bound read_write cannot alias`);
  }
  const { WG, TPR } = tune ?? matvecTuning(rec.gpu.report);
  if (!(Number.isInteger(WG) && Number.isInteger(TPR) && TPR >= 1 && WG % TPR === 0)) {
    throw new Error(`${op}: tuning WG ${WG}, TPR ${TPR} is invalid (TPR must be a positive divisor of WG)`);
  }
  const q = w.quant!;
  const kw = K / 8;
  const params = new Params(8).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q.groupSize)).u32(experts).u32(perSlot && xRows > 1 ? K / 4 : 0).f32(NaN).buffer;
  const bindings = [vec4CodesBinding(op, w), { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, x, ids, y];
  const [gx, gy] = grid(Math.ceil(N / (ROWS_PER_TEAM * (WG / TPR))), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension);
  kernel.dispatch(rec, { type, overrides: { WG, TPR, G: q.groupSize } }, bindings, params, [gx, gy, k]);
}
