import { defineKernel, grid, type ElementType } from './kernel';
import { lib } from './lib';
import source from './ssm_step.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'ssm_step', source, libs: [lib.common, lib.activations] });
const WG = 64;

/** Largest state size N the scan kernels support (their per-channel register arrays). */
export const SSM_MAX_STATE = 64;
/** Storage buffers ssm_step binds at once (WebGPU's portable default per stage is 8). */
export const SSM_STEP_STORAGE_BINDINGS = 9;

/** The tensors of one selective scan; all activations share one dtype, A, D and state are f32. */
export interface SsmArgs {
  /** (T, Di) the conv output. */
  u: Tensor;
  /** (T, Di) dt_proj(dt) including its bias, before softplus. */
  delta: Tensor;
  /** (Di, N) f32, -exp(A_log), precomputed. */
  A: Tensor;
  /** (T, N) */
  B: Tensor;
  /** (T, N) */
  C: Tensor;
  /** (Di) f32 */
  D: Tensor;
  /** (T, Di) the gate. */
  z: Tensor;
  /** (Di, N) f32: h before the first token, replaced by h after the last. */
  state: Tensor;
  /** (T, Di) the output, written. */
  y: Tensor;
}

/** Sizes and dtype of a checked scan. */
export interface SsmSizes { T: number; Di: number; N: number; type: ElementType }

/** Checks every tensor of a scan (shapes, dtypes, liveness, aliasing), naming the op; returns the sizes. */
export function expectSsmArgs(op: string, a: SsmArgs): SsmSizes {
  const type = expectActivation(op, 'u', a.u);
  if (a.u.shape.length !== 2) throw new Error(`${op}: u '${a.u.label}' has shape ${fmtShape(a.u.shape)}, expected (T, Di)`);
  const [T, Di] = a.u.shape;
  a.A.assertAlive(op);
  if (a.A.shape.length !== 2 || a.A.shape[0] !== Di) throw new Error(`${op}: A '${a.A.label}' has shape ${fmtShape(a.A.shape)}, expected (Di, N) = (${Di}, N) for u ${fmtShape(a.u.shape)}`);
  const N = a.A.shape[1];
  if (N > SSM_MAX_STATE) throw new Error(`${op}: state size N = ${N} of A '${a.A.label}' ${fmtShape(a.A.shape)} exceeds the supported maximum of ${SSM_MAX_STATE}`);
  expectShape(op, 'A', a.A, [Di, N], 'f32');
  expectShape(op, 'delta', a.delta, [T, Di], type);
  expectShape(op, 'B', a.B, [T, N], type);
  expectShape(op, 'C', a.C, [T, N], type);
  expectShape(op, 'D', a.D, [Di], 'f32');
  expectShape(op, 'z', a.z, [T, Di], type);
  expectShape(op, 'state', a.state, [Di, N], 'f32');
  expectShape(op, 'y', a.y, [T, Di], type);
  const inputs: [string, Tensor][] = [['u', a.u], ['delta', a.delta], ['A', a.A], ['B', a.B], ['C', a.C], ['D', a.D], ['z', a.z]];
  expectDistinct(op, ['y', a.y], ...inputs, ['state', a.state]);
  expectDistinct(op, ['state', a.state], ...inputs);
  return { T, Di, N, type };
}

/**
 * The selective scan in recurrent form, in one dispatch: one invocation per channel
 * walks the T tokens in order (decode, T = 1, and short sequences; selectiveScan
 * takes long prompts in parallel chunks). See SsmArgs; N <= SSM_MAX_STATE.
 * Needs a device with at least 9 storage buffers per shader stage (selectiveScan
 * falls back to its chunked path, which binds at most 7, on devices that have 8).
 */
export function ssmStep(rec: Recorder, args: SsmArgs): void {
  const op = 'ssm_step';
  const sizes = expectSsmArgs(op, args);
  const limit = rec.gpu.device.limits.maxStorageBuffersPerShaderStage;
  if (limit < SSM_STEP_STORAGE_BINDINGS) {
    throw new Error(`${op}: needs ${SSM_STEP_STORAGE_BINDINGS} storage buffers per shader stage, this device allows ${limit}; use selectiveScan with a scratch (its chunked path binds at most 7)`);
  }
  dispatchSsmStep(rec, args, sizes);
}

/** Records ssm_step on checked arguments (selectiveScan's short path). */
export function dispatchSsmStep(rec: Recorder, a: SsmArgs, s: SsmSizes): void {
  const params = new Params(2).u32(s.T).u32(s.Di).buffer;
  kernel.dispatch(rec, { type: s.type, overrides: { WG, NS: s.N } }, [a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.state, a.y], params, grid(Math.ceil(s.Di / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
