import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './conv1d_causal.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'conv1d_causal', source, libs: [lib.common, lib.activations] });
const WG = 256;
const TT = 8; // tokens per invocation: each input is loaded once per tile, not Kc times
/** Widest conv kernel supported (register arrays in the shader; Mamba checkpoints use 4). */
export const CONV1D_MAX_KERNEL = 8;

/**
 * The Mamba mixer's causal depthwise conv with SiLU, continuing from a carried state:
 * out[t, d] = silu(bias[d] + sum_k weight[d, k] * xpad[t + k, d]), xpad = [state; x] over time.
 * x (T, Di) activations; weight (Di, Kc) f32 (HF conv1d.weight (Di, 1, Kc) squeezed), 2 <= Kc <= 8;
 * bias (Di) f32 or null; state (Di, Kc-1) of x's dtype, the Kc-1 inputs before x (oldest first; zero it
 * at a sequence start), replaced by the last Kc-1 inputs of [state; x]; out (T, Di), x's dtype.
 * Any T >= 1, decode (T = 1) included; one dispatch (see the .wgsl for why the state cannot race).
 */
export function conv1dCausal(rec: Recorder, x: Tensor, weight: Tensor, bias: Tensor | null, state: Tensor, out: Tensor): void {
  const op = 'conv1d_causal';
  const type = expectActivation(op, 'x', x);
  if (x.shape.length !== 2) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, Di)`);
  const [T, Di] = x.shape;
  weight.assertAlive(op);
  if (weight.shape.length !== 2 || weight.shape[0] !== Di || !(weight.shape[1] >= 2 && weight.shape[1] <= CONV1D_MAX_KERNEL)) {
    throw new Error(`${op}: weight '${weight.label}' has shape ${fmtShape(weight.shape)}, expected (Di, Kc) = (${Di}, Kc) with 2 <= Kc <= ${CONV1D_MAX_KERNEL} for x ${fmtShape(x.shape)}`);
  }
  const Kc = weight.shape[1];
  expectShape(op, 'weight', weight, [Di, Kc], 'f32');
  if (bias) expectShape(op, 'bias', bias, [Di], 'f32');
  expectShape(op, 'state', state, [Di, Kc - 1], x.dtype);
  expectShape(op, 'out', out, [T, Di], x.dtype);
  const inputs: [string, Tensor][] = [['x', x], ['weight', weight], ...(bias ? [['bias', bias] as [string, Tensor]] : [])];
  expectDistinct(op, ['out', out], ...inputs, ['state', state]);
  expectDistinct(op, ['state', state], ...inputs);
  const params = new Params(2).u32(T).u32(Di).buffer;
  const overrides = { WG, TT, KC: Kc, HAS_BIAS: bias ? 1 : 0 };
  // Without a bias, weight fills its binding: bound read twice is allowed, and HAS_BIAS = 0 never reads it.
  kernel.dispatch(rec, { type, overrides }, [x, weight, bias ?? weight, state, out], params, grid(Math.ceil((Math.ceil(T / TT) * Di) / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
