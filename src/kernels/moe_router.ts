import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './moe_router.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectShape } from './checks';
import type { DeviceReport } from '../runtime/device';

/** How the weights are made: see moe_router.wgsl (and reference/moe_ops.ts, which spells the same modes). */
export type MoeRouterMode = 'softmax-topk' | 'topk-softmax';

const kernel = defineKernel({ name: 'moe_router', source, libs: [lib.common] });

/** Most experts a router handles: the shader's workgroup arrays (MAX_E). */
export const MOE_MAX_EXPERTS = 128;

export interface MoeRouterOptions {
  /** 'softmax-topk' (Mixtral, OLMoE, Qwen2-MoE) or 'topk-softmax' (Granite); see moe_router.wgsl. */
  mode: MoeRouterMode;
  /** 'softmax-topk' only: divide the k weights by their sum (Mixtral: always; OLMoE, Qwen2-MoE: norm_topk_prob). Default false. */
  renormalize?: boolean;
  /** Invocations per token (tests, timing): 1 for the serial path, else a power of two up to 128 for the ranks; default moeRouterLanes(). */
  lanes?: number;
}

/** Tokens per workgroup of the serial path (lanes 1). */
const SERIAL_WG = 64;

/**
 * Invocations per token for this adapter: 1 on a CPU (SwiftShader through
 * Dawn, 2-core x86-64, T 256 tokens: E 128, k 8 took 241 ms with 128 lanes
 * per token, 166 with 32, 87 with 8, 12 with 1; E 8, k 2: 295, 50, 9, 1.1);
 * on a GPU a lane per expert (each rank is E comparisons in workgroup
 * memory), at least a warp of 32: chosen by reasoning, not measured on a GPU yet.
 */
export function moeRouterLanes(report: Pick<DeviceReport, 'software'>, E: number): number {
  if (report.software) return 1;
  return Math.min(MOE_MAX_EXPERTS, Math.max(32, 2 ** Math.ceil(Math.log2(E))));
}

/**
 * The router of a mixture-of-experts layer: from gate logits (T, E) f32|f16,
 * per token the top k experts ids (T, k) u32 (descending weight, ties by lower
 * index) and their weights (T, k) f32; k is ids' second dimension. E <= 128,
 * 1 <= k <= E. Nothing comes back to the CPU: the experts kernels read ids on the GPU.
 */
export function moeRouter(rec: Recorder, logits: Tensor, ids: Tensor, weights: Tensor, opts: MoeRouterOptions): void {
  const op = 'moe_router';
  const type = expectActivation(op, 'logits', logits);
  if (logits.shape.length !== 2) throw new Error(`${op}: logits '${logits.label}' has shape ${fmtShape(logits.shape)}, expected (T, E)`);
  const [T, E] = logits.shape;
  if (E > MOE_MAX_EXPERTS) throw new Error(`${op}: logits '${logits.label}' ${fmtShape(logits.shape)} has E = ${E} experts, over the ${MOE_MAX_EXPERTS} supported`);
  ids.assertAlive(op);
  if (ids.dtype !== 'u32' || ids.shape.length !== 2 || ids.shape[0] !== T) {
    throw new Error(`${op}: ids '${ids.label}' ${fmtShape(ids.shape)} ${ids.dtype} must be (T, k) u32 with T = ${T} as logits '${logits.label}' ${fmtShape(logits.shape)}`);
  }
  const k = ids.shape[1];
  if (k > E) throw new Error(`${op}: k = ${k} (ids '${ids.label}' ${fmtShape(ids.shape)}) exceeds the E = ${E} experts of logits '${logits.label}' ${fmtShape(logits.shape)}`);
  expectShape(op, 'weights', weights, [T, k], 'f32');
  if (ids.buffer === weights.buffer) throw new Error(`${op}: ids '${ids.label}' and weights '${weights.label}' share a buffer; both are outputs`);
  if (opts.mode !== 'softmax-topk' && opts.mode !== 'topk-softmax') throw new Error(`${op}: mode '${String(opts.mode)}' is not 'softmax-topk' or 'topk-softmax'`);
  const normTopK = opts.mode === 'topk-softmax' || opts.renormalize === true;
  const lanes = opts.lanes ?? moeRouterLanes(rec.gpu.report, E);
  if (!(Number.isInteger(lanes) && lanes >= 1 && lanes <= MOE_MAX_EXPERTS && (lanes & (lanes - 1)) === 0)) throw new Error(`${op}: lanes = ${lanes} must be a power of two in 1 .. ${MOE_MAX_EXPERTS}`);
  const WG = lanes === 1 ? SERIAL_WG : lanes;
  const params = new Params(4).u32(T).u32(E).u32(k).u32(normTopK ? 1 : 0).buffer;
  const groups = lanes === 1 ? Math.ceil(T / SERIAL_WG) : T;
  kernel.dispatch(rec, { type, overrides: { WG, LANES: lanes } }, [logits, ids, weights], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
