// Poisoning the experts a token was not routed to, on the GPU: if a kernel
// reads any of their rows, NaN reaches its output. Used by the kernel tests
// and by the model tests of the decode path.

import type { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { q4GroupsPerRow } from '../../src/runtime/q4';

const NAN_SCALES = 0x7e007e00; // an f16 NaN as both d and m: every value of the group dequantizes to NaN

/** Overwrites the scales (NaN) and codes of the listed experts of a stacked q4 (E * N, K) weight on the GPU. */
export function poisonExperts(g: Gpu, w: Tensor, N: number, experts: Iterable<number>): void {
  const [, K] = w.shape;
  const q = w.quant;
  if (!q || w.dtype !== 'q4') throw new Error(`poisonExperts: ${w.label} is not a 4-bit stack`);
  const gpr = q4GroupsPerRow(K, q.groupSize);
  for (const e of experts) {
    g.device.queue.writeBuffer(w.buffer.gpuBuffer, q.scalesOffset + e * N * gpr * 4, new Uint32Array(N * gpr).fill(NAN_SCALES));
    g.device.queue.writeBuffer(w.buffer.gpuBuffer, e * N * (K / 8) * 4, new Uint32Array(N * (K / 8)).fill(0xffffffff));
  }
}

/** The experts 0..E-1 that none of `ids` names. */
export const unrouted = (E: number, ids: ArrayLike<number>): number[] => Array.from({ length: E }, (_, e) => e).filter((e) => !Array.from(ids).includes(e));
