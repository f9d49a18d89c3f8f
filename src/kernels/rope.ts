// Rotary position embedding (Su et al. 2021, RoFormer, eq. 34), in place on
// (T, H, Dh), with the (cos, sin) table computed here on the CPU.
//
// Why a table and not cos/sin in the shader: WGSL only guarantees cos and sin
// to an absolute error of 2^-11, and only inside [-pi, pi], while angles grow
// to pos * 1 radian. A table built in float32 the way Hugging Face builds it
// gives the same values as the reference model on every GPU, and costs
// T * R/2 * 8 bytes per step.

import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './rope.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct } from './checks';

const kernel = defineKernel({ name: 'rope', source, libs: [lib.common] });
const WG = 256;

/** Which dims rotate together: "neox" pairs (i, i + R/2) (HF Llama rotate_half), "interleaved" pairs (2i, 2i + 1) (GPT-J, Meta). */
export type RopeLayout = 'neox' | 'interleaved';

/**
 * Rotates x (T, H, Dh) in place by the angles of cosSin (T, R/2, 2) f32, made by
 * ropeTable; R = rotDim <= Dh, and dims >= R are left untouched.
 */
export function rope(rec: Recorder, x: Tensor, cosSin: Tensor, layout: RopeLayout): void {
  const op = 'rope';
  const type = expectActivation(op, 'x', x);
  if (x.shape.length !== 3) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, H, Dh)`);
  const [tokens, heads, dim] = x.shape;
  cosSin.assertAlive(op);
  const half = cosSin.shape[1];
  if (cosSin.dtype !== 'f32' || cosSin.shape.length !== 3 || cosSin.shape[0] !== tokens || cosSin.shape[2] !== 2) {
    throw new Error(`${op}: cosSin '${cosSin.label}' ${fmtShape(cosSin.shape)} ${cosSin.dtype} must be f32 (${tokens}, rotDim/2, 2) for x ${fmtShape(x.shape)}`);
  }
  if (2 * half > dim) throw new Error(`${op}: rotDim ${2 * half} of cosSin '${cosSin.label}' exceeds the head dim ${dim} of x '${x.label}'`);
  if (layout !== 'neox' && layout !== 'interleaved') throw new Error(`${op}: layout must be 'neox' or 'interleaved', got '${layout}'`);
  expectDistinct(op, ['x', x], ['cosSin', cosSin]);
  const params = new Params(4).u32(tokens).u32(heads).u32(dim).u32(half).buffer;
  const overrides = { WG, INTERLEAVED: layout === 'interleaved' ? 1 : 0 };
  kernel.dispatch(rec, { type, overrides }, [x, cosSin], params, grid(Math.ceil((tokens * heads * half) / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * inv_freq[i] = 1 / theta^(2i / R), i < R/2, in float32 as Hugging Face computes it
 * (_compute_default_rope_parameters): `1.0 / (base ** (torch.arange(0, dim, 2,
 * dtype=torch.int64).float() / dim))`. Each step is one float32 operation, so
 * each is rounded once here: 2i/R, then theta^e (theta itself cast to float32),
 * then the reciprocal (`1.0 / t` is `t.reciprocal() * 1.0` in torch). Rounding a
 * float64 result to float32 is exact-then-rounded for / (53 >= 2*24 + 2 bits);
 * for pow we give the correctly rounded value, which torch's own float32 pow
 * (1 ulp) may miss by one ulp.
 */
export function ropeInvFreq(rotDim: number, theta: number): Float32Array {
  if (!Number.isInteger(rotDim) || rotDim < 2 || rotDim % 2 !== 0) throw new Error(`ropeInvFreq: rotDim must be a positive even integer, got ${rotDim}`);
  if (!(theta > 0) || !Number.isFinite(theta)) throw new Error(`ropeInvFreq: theta must be a positive number, got ${theta}`);
  const base = Math.fround(theta);
  const out = new Float32Array(rotDim / 2);
  for (let i = 0; i < rotDim / 2; i++) {
    const e = Math.fround((2 * i) / rotDim);
    out[i] = 1 / Math.fround(base ** e); // the store into Float32Array rounds the reciprocal
  }
  return out;
}

/**
 * The (cos, sin) table for positions start .. start+count-1, as a (count, R/2, 2)
 * Float32Array for rope(): angle = float32(pos * inv_freq[i]), the one float32
 * product of HF's `inv_freq @ position_ids.float()`, then cos and sin of that
 * float32 angle rounded to float32 (HF: `emb.cos()`, attention scaling 1).
 */
export function ropeTable(invFreq: Float32Array, start: number, count: number): Float32Array {
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(count) || count < 1 || start + count > 2 ** 24) {
    throw new Error(`ropeTable: positions ${start} .. ${start + count - 1} must be integers in [0, 2^24) (exact in float32)`);
  }
  const half = invFreq.length;
  const out = new Float32Array(count * half * 2);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((start + t) * invFreq[i]);
      out[(t * half + i) * 2] = Math.cos(angle);
      out[(t * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return out;
}
