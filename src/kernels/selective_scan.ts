import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './selective_scan.wgsl?raw';
import chunksSource from './selective_scan_chunks.wgsl?raw';
import carrySource from './selective_scan_carry.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectDistinct } from './checks';
import { dispatchSsmStep, expectSsmArgs, SSM_STEP_STORAGE_BINDINGS, type SsmArgs } from './ssm_step';

// Three passes of one op (the scheme is in selective_scan.wgsl).
const outputs = defineKernel({ name: 'selective_scan', source, libs: [lib.activations] });
const chunks = defineKernel({ name: 'selective_scan_chunks', source: chunksSource, libs: [lib.activations] });
const carry = defineKernel({ name: 'selective_scan_carry', source: carrySource, libs: [lib.common] });

/**
 * Tokens per chunk. The serial work of an invocation is one chunk (passes 1, 3)
 * or T / chunk steps (pass 2); 64 gives 196,608 invocations per pass at
 * T = 8192 and Di = 1536 (mamba-130m) with a 128-step carry, and a scratch of
 * about T / 4 × Di floats at N = 16.
 */
export const SCAN_CHUNK = 64;
const WG = 64;        // channels per workgroup in passes 1 and 3
const CARRY_WG = 256;
const TB = 16;        // tokens per B/C tile: 2 × 16 × N × 4 bytes <= 8 KiB of workgroup memory at N = 64

export interface SelectiveScanArgs extends SsmArgs {
  /**
   * f32 workspace of the chunked path, shaped selectiveScanScratchShape(maxT, Di, N)
   * (or more chunks), owned by the caller. Needed when T > SCAN_CHUNK, or on a
   * device with fewer than 9 storage buffers per stage; unused (may be absent) otherwise.
   */
  scratch?: Tensor;
}

/**
 * Shape of the f32 scratch selectiveScan needs for up to maxT tokens:
 * (1 + chunks, Di, N + 1): a record [A, D] per channel, then per chunk and
 * channel [chunk state (N), sum of dt]. The model allocates it once.
 */
export function selectiveScanScratchShape(maxT: number, Di: number, N: number): [number, number, number] {
  return [1 + Math.ceil(maxT / SCAN_CHUNK), Di, N + 1];
}

/**
 * The Mamba-1 selective scan with D skip and silu(z) gate; see SsmArgs for the
 * tensors (N <= SSM_MAX_STATE). A prompt of T > SCAN_CHUNK tokens runs
 * parallel along the sequence in chunks (3 dispatches, needs `scratch`);
 * T <= SCAN_CHUNK, decode included, is one ssm_step dispatch where the device
 * allows 9 storage buffers per stage, and the chunked path where it does not.
 * The state carries over exactly: T1 then T2 tokens equals T1 + T2 at once.
 */
export function selectiveScan(rec: Recorder, args: SelectiveScanArgs): void {
  const op = 'selective_scan';
  const s = expectSsmArgs(op, args);
  const { T, Di, N, type } = s;
  if (T <= SCAN_CHUNK && rec.gpu.device.limits.maxStorageBuffersPerShaderStage >= SSM_STEP_STORAGE_BINDINGS) {
    dispatchSsmStep(rec, args, s);
    return;
  }
  const nChunks = Math.ceil(T / SCAN_CHUNK);
  const maxGroups = rec.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (nChunks > maxGroups) throw new Error(`${op}: T = ${T} tokens make ${nChunks} chunks of ${SCAN_CHUNK}, over the ${maxGroups} workgroups per dimension; scan the prompt in parts (the state carries over)`);
  const scratch = expectScratch(op, args.scratch, T, Di, N, nChunks);
  expectDistinct(op, ['scratch', scratch], ['u', args.u], ['delta', args.delta], ['A', args.A], ['B', args.B], ['C', args.C], ['D', args.D], ['z', args.z], ['state', args.state], ['y', args.y]);
  const { u, delta, A, B, C, D, z, state, y } = args;
  const groups = [Math.ceil(Di / WG), nChunks];
  const sizes = new Params(3).u32(T).u32(Di).u32(SCAN_CHUNK).buffer;
  chunks.dispatch(rec, { type, overrides: { WG, NS: N, TB } }, [u, delta, A, B, scratch], sizes, groups);
  carry.dispatch(rec, { type, overrides: { WG: CARRY_WG, NS: N } }, [A, D, state, scratch], new Params(2).u32(Di).u32(nChunks).buffer, grid(Math.ceil((Di * N) / CARRY_WG), maxGroups));
  outputs.dispatch(rec, { type, overrides: { WG, NS: N, TB } }, [u, delta, B, C, z, scratch, y], sizes, groups);
}

/** Checks the workspace: f32 (1 + chunks', Di, N + 1) with chunks' >= the chunks T needs. */
function expectScratch(op: string, scratch: Tensor | undefined, T: number, Di: number, N: number, nChunks: number): Tensor {
  const want = fmtShape([1 + nChunks, Di, N + 1]);
  if (!scratch) {
    throw new Error(`${op}: T = ${T} tokens take the chunked path, which needs scratch: f32 ${want} or more chunks; size it with selectiveScanScratchShape(maxT, Di, N)`);
  }
  scratch.assertAlive(op);
  const [rows, sd, rs] = scratch.shape;
  if (scratch.dtype !== 'f32' || scratch.shape.length !== 3 || sd !== Di || rs !== N + 1 || !(rows >= 1 + nChunks)) {
    throw new Error(`${op}: scratch '${scratch.label}' ${fmtShape(scratch.shape)} ${scratch.dtype} must be f32 ${want} or more chunks for T = ${T}; size it with selectiveScanScratchShape(maxT, Di, N)`);
  }
  return scratch;
}
