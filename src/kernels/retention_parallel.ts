import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './retention_parallel.wgsl?raw';
import stateSource from './retention_state.wgsl?raw';
import { Params, type Binding, type Recorder } from '../runtime/recorder';
import { expectRetentionArgs, type RetentionArgs, type RetentionSizes } from './retention_recurrent';

// Two kernels, both shared with the chunkwise form (retention_chunkwise.ts):
// the tiled outputs of a run of chunks, and the (chunk) state sums.
const outputs = defineKernel({ name: 'retention_parallel', source, libs: [lib.common, lib.preciseLog2] });
const states = defineKernel({ name: 'retention_state', source: stateSource, libs: [lib.common, lib.preciseLog2] });

/** Rows, keys and columns per tile of retention_parallel and retention_state (B in the shaders). */
export const RETENTION_TILE = 32;
/** Most 32-column blocks of the output one retention_parallel workgroup holds (NV_MAX in the shader). */
const NV_MAX = 4;

/**
 * Records retention_parallel on checked arguments: out for T tokens in chunks of
 * `chunk` (a multiple of RETENTION_TILE, or >= T for one chunk), each chunk
 * starting from its state in `starts`, (chunks, H, Dk, Dv) f32.
 */
export function dispatchRetentionOutputs(rec: Recorder, a: RetentionArgs, s: RetentionSizes, starts: Binding, chunk: number): void {
  // NV column blocks share one set of scores: more of them compute each score fewer times (Dv / (32 NV)).
  const NV = Math.min(NV_MAX, Math.ceil(s.Dv / RETENTION_TILE));
  const groups = s.H * Math.ceil(s.T / RETENTION_TILE) * Math.ceil(s.Dv / (RETENTION_TILE * NV));
  const params = new Params(6).u32(s.T).u32(s.H).u32(s.Dk).u32(s.Dv).u32(chunk).f32(a.scale).buffer;
  outputs.dispatch(rec, { type: s.type, overrides: { NV } }, [a.q, a.k, a.v, a.decay, starts, a.out], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * Records retention_state on checked arguments: for each of the T tokens' chunks
 * of `chunk`, its decayed sum of k_mᵀ v_m into dst (chunks, H, Dk, Dv) f32;
 * carry adds gamma^len times what dst held (the parallel form's one chunk).
 */
export function dispatchRetentionState(rec: Recorder, a: RetentionArgs, s: RetentionSizes, dst: Binding, chunk: number, carry: boolean): void {
  const chunks = Math.ceil(s.T / chunk);
  const groups = chunks * s.H * Math.ceil(s.Dk / RETENTION_TILE) * Math.ceil(s.Dv / RETENTION_TILE);
  const params = new Params(6).u32(s.T).u32(s.H).u32(s.Dk).u32(s.Dv).u32(chunk).u32(carry ? 1 : 0).buffer;
  states.dispatch(rec, { type: s.type }, [a.k, a.v, a.decay, dst], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * Retention in its parallel form, two dispatches: the outputs, tiled like
 * attention prefill with the decay mask computed on the fly (work T² H (Dk + Dv) / 2,
 * plus T H Dk Dv for the carried state's term), then the new state as a decayed
 * sum over all T tokens (T H Dk Dv). Quadratic in T: for short prompts;
 * retentionChunkwise is linear. Any Dk, Dv (multiples of 4). See RetentionArgs.
 */
export function retentionParallel(rec: Recorder, args: RetentionArgs): void {
  const s = expectRetentionArgs('retention_parallel', rec, args);
  dispatchRetentionOutputs(rec, args, s, args.state, s.T);    // reads S0 ...
  dispatchRetentionState(rec, args, s, args.state, s.T, true); // ... before this replaces it
}
