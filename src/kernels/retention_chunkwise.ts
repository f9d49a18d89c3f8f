import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './retention_chunkwise.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectDistinct } from './checks';
import { expectRetentionArgs, type RetentionArgs } from './retention_recurrent';
import { dispatchRetentionOutputs, dispatchRetentionState, RETENTION_TILE } from './retention_parallel';

// Three passes (the scheme is in retention_chunkwise.wgsl): retention_state per
// chunk, this module's carry, retention_parallel over the chunks.
// The carry touches no activation, but takes the call's type like the other two passes, so an
// f16 call runs f16 pipelines only (as selective_scan_carry does).
const carry = defineKernel({ name: 'retention_chunkwise', source, libs: [lib.common, lib.preciseLog2] });
const CARRY_WG = 64;

/**
 * Tokens per chunk by default. The outputs' work per token is chunk × (Dk + Dv) / 2
 * (the intra-chunk scores) plus Dk × Dv (the start state's term); the scratch
 * holds one state per chunk. 64 (fla's chunk size) keeps both modest.
 */
export const RETENTION_CHUNK = 64;

export interface RetentionChunkwiseArgs extends RetentionArgs {
  /**
   * f32 workspace (chunks', H, Dk, Dv), chunks' >= ceil(T / chunk), owned by the
   * caller; size it with retentionChunkwiseScratchShape(maxT, H, Dk, Dv, chunk).
   * Only its first ceil(T / chunk) states are bound.
   */
  scratch: Tensor;
  /** Tokens per chunk: a positive multiple of 32 (RETENTION_TILE); default RETENTION_CHUNK. */
  chunk?: number;
}

/**
 * Shape of the f32 scratch retentionChunkwise needs for up to maxT tokens:
 * (ceil(maxT / chunk), H, Dk, Dv), one state per chunk (each chunk's start
 * state). That is maxT / chunk × H Dk Dv × 4 bytes: a model prefilling in
 * parts sizes it for the longest part.
 */
export function retentionChunkwiseScratchShape(maxT: number, H: number, Dk: number, Dv: number, chunk = RETENTION_CHUNK): [number, number, number, number] {
  return [Math.ceil(maxT / chunk), H, Dk, Dv];
}

/**
 * Retention in its chunkwise form, three dispatches, linear in T: each chunk's
 * own state share (parallel over chunks), the carry across chunks (serial over
 * chunks only; writes the final state), then every chunk's outputs in parallel
 * from its start state (work per token chunk (Dk + Dv) / 2 + Dk Dv). For long
 * prompts; decode is retentionRecurrent. See RetentionArgs and RetentionChunkwiseArgs.
 */
export function retentionChunkwise(rec: Recorder, args: RetentionChunkwiseArgs): void {
  const op = 'retention_chunkwise';
  const s = expectRetentionArgs(op, rec, args);
  const chunk = args.chunk ?? RETENTION_CHUNK;
  if (!(Number.isInteger(chunk) && chunk > 0 && chunk % RETENTION_TILE === 0)) {
    throw new Error(`${op}: chunk must be a positive multiple of ${RETENTION_TILE} (a tile of queries never straddles two chunks), got ${chunk}`);
  }
  const chunks = Math.ceil(s.T / chunk);
  const { scratch } = args;
  const want = [chunks, s.H, s.Dk, s.Dv];
  if (!scratch) throw new Error(`${op}: needs scratch: f32 ${fmtShape(want)} or more chunks; size it with retentionChunkwiseScratchShape(maxT, H, Dk, Dv)`);
  scratch.assertAlive(op);
  const [rows, ...rest] = scratch.shape;
  if (scratch.dtype !== 'f32' || scratch.shape.length !== 4 || rest.some((d, i) => d !== want[i + 1]) || !(rows >= chunks)) {
    throw new Error(`${op}: scratch '${scratch.label}' ${fmtShape(scratch.shape)} ${scratch.dtype} must be f32 ${fmtShape(want)} or more chunks for T = ${s.T} in chunks of ${chunk}; size it with retentionChunkwiseScratchShape(maxT, H, Dk, Dv)`);
  }
  const { q, k, v, decay, state, out } = args;
  expectDistinct(op, ['scratch', scratch], ['q', q], ['k', k], ['v', v], ['decay', decay], ['state', state], ['out', out]);
  const size = s.H * s.Dk * s.Dv;  // one state, in floats
  const used = { tensor: scratch, offset: 0, size: chunks * size * 4 };
  dispatchRetentionState(rec, args, s, used, chunk, false);
  const params = new Params(5).u32(s.T).u32(chunk).u32(chunks).u32(size / 4).u32((s.Dk * s.Dv) / 4).buffer;
  carry.dispatch(rec, { type: s.type, overrides: { WG: CARRY_WG } }, [decay, state, used], params, grid(Math.ceil(size / 4 / CARRY_WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
  dispatchRetentionOutputs(rec, args, s, used, chunk);
}
