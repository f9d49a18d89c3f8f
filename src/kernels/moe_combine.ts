import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './moe_combine.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';
import { MOE_MAX_EXPERTS } from './moe_router';

const kernel = defineKernel({ name: 'moe_combine', source, libs: [lib.common] });
const WG = 256;

export interface MoeCombineOptions {
  /** E, the experts ids index (an id >= E makes its token's row NaN). */
  experts: number;
  /** Add into out (the residual stream) instead of overwriting it. Default false. */
  accumulate?: boolean;
}

/**
 * out (T, D) (+)= sum_j weights[t, j] * y[t * k + j] in f32, slots in order
 * (bit-identical run to run): y (T * k, D) of out's dtype (decode: moe_matvec_q4's
 * (k, D); prefill: moe_matmul_q4's), ids (T, k) u32 and weights (T, k) f32
 * (moe_router's outputs). out aliases none of them.
 */
export function moeCombine(rec: Recorder, y: Tensor, ids: Tensor, weights: Tensor, out: Tensor, opts: MoeCombineOptions): void {
  const op = 'moe_combine';
  const type = expectActivation(op, 'out', out);
  if (out.shape.length !== 2) throw new Error(`${op}: out '${out.label}' has shape ${fmtShape(out.shape)}, expected (T, D)`);
  const [T, D] = out.shape;
  ids.assertAlive(op);
  if (ids.dtype !== 'u32' || ids.shape.length !== 2 || ids.shape[0] !== T) {
    throw new Error(`${op}: ids '${ids.label}' ${fmtShape(ids.shape)} ${ids.dtype} must be (T, k) u32 with T = ${T} as out '${out.label}' ${fmtShape(out.shape)}`);
  }
  const k = ids.shape[1];
  expectShape(op, 'weights', weights, [T, k], 'f32');
  expectActivation(op, 'y', y);
  if (y.dtype !== type || y.numel !== T * k * D || y.shape[y.shape.length - 1] !== D) {
    throw new Error(`${op}: y '${y.label}' ${fmtShape(y.shape)} ${y.dtype} must be (T * k, D) = (${T * k}, ${D}) ${type} for out '${out.label}' ${fmtShape(out.shape)} and ids '${ids.label}' ${fmtShape(ids.shape)}`);
  }
  const E = opts.experts;
  if (!(Number.isInteger(E) && E >= 1 && E <= MOE_MAX_EXPERTS)) throw new Error(`${op}: experts = ${E} must be an integer in 1 .. ${MOE_MAX_EXPERTS}`);
  if (k > E) throw new Error(`${op}: k = ${k} (ids '${ids.label}' ${fmtShape(ids.shape)}) exceeds the E = ${E} experts`);
  expectDistinct(op, ['out', out], ['y', y], ['ids', ids], ['weights', weights]);
  const params = new Params(6).u32(T).u32(D).u32(k).u32(E).u32(opts.accumulate ? 1 : 0).f32(NaN).buffer;
  kernel.dispatch(rec, { type, overrides: { WG } }, [y, ids, weights, out], params, grid(Math.ceil((T * D) / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
