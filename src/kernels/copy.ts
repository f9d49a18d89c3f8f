import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './copy.wgsl?raw';
import type { Recorder } from '../runtime/recorder';
import { Params } from '../runtime/recorder';
import { fmtShape, isQuantized, type Tensor } from '../runtime/tensor';

const kernel = defineKernel({ name: 'copy', source, libs: [lib.common] });
const WG = 256;

/** dst = src for buffers whose byte size is a multiple of 16 (a bandwidth probe, not a general copy). */
export function copy(rec: Recorder, src: Tensor, dst: Tensor): void {
  if (src.byteLength !== dst.byteLength || src.byteLength % 16 !== 0 || isQuantized(src.dtype)) {
    throw new Error(`copy: '${src.label}' ${fmtShape(src.shape)} and '${dst.label}' ${fmtShape(dst.shape)} must be equal unquantized sizes, a multiple of 16 bytes`);
  }
  const n = src.byteLength / 16;
  kernel.dispatch(rec, { overrides: { WG } }, [src, dst], new Params(1).u32(n).buffer, grid(Math.ceil(n / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
