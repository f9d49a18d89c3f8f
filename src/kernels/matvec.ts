import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './matvec.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct } from './checks';

const kernel = defineKernel({ name: 'matvec', source, libs: [lib.common] });
const WG = 64;

/** y = W x for one token: x (K) or (1, K), W f32 (N, K) (out, in), y (N) or (1, N) of x's dtype. */
export function matvec(rec: Recorder, w: Tensor, x: Tensor, y: Tensor): void {
  const op = 'matvec';
  const type = expectActivation(op, 'x', x);
  w.assertAlive(op);
  if (w.dtype !== 'f32' || w.shape.length !== 2) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} must be an f32 (N, K) weight, got ${w.dtype} of rank ${w.shape.length}`);
  const [N, K] = w.shape;
  const oneRow = (t: Tensor, n: number) => t.numel === n && (t.shape.length === 1 || (t.shape.length === 2 && t.shape[0] === 1));
  if (!oneRow(x, K)) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (${K}) or (1, ${K}) to match w '${w.label}' ${fmtShape(w.shape)}`);
  y.assertAlive(op);
  if (!oneRow(y, N) || y.dtype !== type) throw new Error(`${op}: y '${y.label}' ${fmtShape(y.shape)} ${y.dtype} must be (${N}) or (1, ${N}) ${type}`);
  expectDistinct(op, ['y', y], ['x', x], ['w', w]);
  const params = new Params(2).u32(N).u32(K).buffer;
  kernel.dispatch(rec, { type, overrides: { WG } }, [x, w, y], params, grid(Math.ceil(N / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
