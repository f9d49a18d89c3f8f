import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { conv1dCausal } from '../../src/kernels/conv1d_causal';
import { conv1dCausalRef } from '../../src/reference/mamba_ops';
import type { Gpu } from '../../src/runtime/gpu';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// f32 sums of Kc <= 4 products and one exp in silu: relative error near 1e-6.
const TOL = { atol: 1e-6, rtol: 1e-5 };

interface Case { T: number; Di: number; Kc: number; bias: boolean; seed: number }

function inputs(c: Case) {
  const { T, Di, Kc, seed } = c;
  return {
    x: randn(seed, T * Di),
    w: randn(seed + 1, Di * Kc, 0.5),
    b: c.bias ? randn(seed + 2, Di, 0.5) : null,
    state: randn(seed + 3, Di * (Kc - 1)),  // a carried state, not zeros: the left context must be read
  };
}

/** Runs conv1dCausal on the GPU over chunks of x of the given lengths, the state carried on the GPU. */
async function runChunks(g: Gpu, c: Case, lens: number[], data: ReturnType<typeof inputs>): Promise<{ out: Float32Array; state: Float32Array }> {
  const { Di, Kc } = c;
  const tw = g.upload(data.w, [Di, Kc], { label: 'w' });
  const tb = data.b ? g.upload(data.b, [Di], { label: 'b' }) : null;
  const ts = g.upload(data.state, [Di, Kc - 1], { label: 'state', category: 'cache' });
  const out = new Float32Array(lens.reduce((a, b) => a + b, 0) * Di);
  let t0 = 0;
  for (const T of lens) {
    const tx = g.upload(data.x.subarray(t0 * Di, (t0 + T) * Di), [T, Di], { label: 'x' });
    const to = poisoned(g, [T, Di]);
    const rec = new Recorder(g);
    conv1dCausal(rec, tx, tw, tb, ts, to);
    out.set((await rec.submitAndRead(to)) as Float32Array, t0 * Di);
    [tx, to].forEach((t) => t.dispose());
    t0 += T;
  }
  const state = (await new Recorder(g).submitAndRead(ts)) as Float32Array;
  [tw, tb, ts].forEach((t) => t?.dispose());
  return { out, state };
}

describe('conv1dCausalRef', () => {
  it('matches a hand-checked case: Kc 2, two tokens, state carried', () => {
    // xpad = [s; x0; x1] = [1; 2; 3], w = [10, 100], bias 0.5 -> pre-activations 210.5 and 320.5
    const { out, state } = conv1dCausalRef([2, 3], [10, 100], [0.5], [1], 2, 1, 2);
    expect(out[0]).toBeCloseTo(210.5, 10);  // silu(v) = v for large v
    expect(out[1]).toBeCloseTo(320.5, 10);
    expect(Array.from(state)).toEqual([3]);
  });
});

describeGpu('conv1d_causal', () => {
  const gpu = useGpu();

  it.each([
    // T, Di, Kc, bias: T = 1 is decode; T < Kc-1 shifts part of the old state
    [1, 5, 4, true], [1, 3, 2, true], [2, 8, 4, true], [3, 8, 4, false], [7, 33, 4, true],
    [7, 9, 2, true], [9, 10, 8, true], [17, 12, 5, true], [64, 100, 4, true], [300, 24, 4, false], [1000, 7, 2, true],
  ])('T %i × Di %i, Kc %i, bias %s matches the float64 reference, state included', async (T, Di, Kc, bias) => {
    const c = { T, Di, Kc, bias, seed: T * 7919 + Di * 31 + Kc };
    const data = inputs(c);
    const want = conv1dCausalRef(data.x, data.w, data.b, data.state, T, Di, Kc);
    const got = await runChunks(gpu(), c, [T], data);
    expectClose(got.out, want.out, TOL, `conv1d_causal out ${T}×${Di} Kc ${Kc}`);
    expectClose(got.state, want.state, { atol: 0, rtol: 0 }, 'conv1d_causal state (copies of inputs: exact)');
  });

  it('carries the state exactly: T1 then T2 tokens equals T1 + T2 at once, and T = 1 steps equal one prefill', async () => {
    const c = { T: 23, Di: 19, Kc: 4, bias: true, seed: 4242 };
    const data = inputs(c);
    const whole = await runChunks(gpu(), c, [23], data);
    const split = await runChunks(gpu(), c, [2, 21], data);  // the first part shorter than Kc-1, the second over a tile
    const steps = await runChunks(gpu(), c, Array(23).fill(1), data);
    // The same f32 operations in the same order whichever way the tokens arrive: bitwise equal.
    expect(Array.from(split.out)).toEqual(Array.from(whole.out));
    expect(Array.from(split.state)).toEqual(Array.from(whole.state));
    expect(Array.from(steps.out)).toEqual(Array.from(whole.out));
    expect(Array.from(steps.state)).toEqual(Array.from(whole.state));
    const want = conv1dCausalRef(data.x, data.w, data.b, data.state, 23, 19, 4);
    expectClose(whole.out, want.out, TOL, 'conv1d_causal chained');
  });

  it('rejects mismatched shapes, wrong dtypes, a disposed state and aliasing, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const w = g.upload(randn(2, 16), [4, 4], { label: 'w' });
    const b = g.upload(randn(3, 4), [4], { label: 'b' });
    const s = g.upload(randn(4, 12), [4, 3], { label: 's' });
    const out = g.empty([3, 4], 'f32', 'out');
    const rec = new Recorder(g);
    const w5 = g.upload(randn(5, 20), [5, 4], { label: 'w5' });
    expect(() => conv1dCausal(rec, x, w5, b, s, out)).toThrow(/conv1d_causal: weight 'w5' has shape \(5, 4\), expected \(Di, Kc\) = \(4, Kc\)/);
    const w1 = g.upload(randn(6, 4), [4, 1], { label: 'w1' });
    expect(() => conv1dCausal(rec, x, w1, b, s, out)).toThrow(/conv1d_causal: weight 'w1' .* 2 <= Kc <= 8/);
    const s2 = g.upload(randn(7, 8), [4, 2], { label: 's2' });
    expect(() => conv1dCausal(rec, x, w, b, s2, out)).toThrow(/conv1d_causal: state 's2' has shape \(4, 2\), expected \(4, 3\)/);
    const b3 = g.upload(randn(8, 3), [3], { label: 'b3' });
    expect(() => conv1dCausal(rec, x, w, b3, s, out)).toThrow(/conv1d_causal: bias 'b3' has shape \(3\), expected \(4\)/);
    const o2 = g.empty([2, 4], 'f32', 'o2');
    expect(() => conv1dCausal(rec, x, w, b, s, o2)).toThrow(/conv1d_causal: out 'o2' has shape \(2, 4\), expected \(3, 4\)/);
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    expect(() => conv1dCausal(rec, xi, w, b, s, out)).toThrow(/conv1d_causal: x 'xi' \(3, 4\) must be f32 or f16, got i32/);
    const si = g.upload(new Int32Array(12), [4, 3], { label: 'si' });
    expect(() => conv1dCausal(rec, x, w, b, si, out)).toThrow(/conv1d_causal: state 'si' \(4, 3\) must be f32, got i32/);
    // out and state as two views of one buffer: WebGPU forbids that binding
    const both = g.empty([24], 'f32', 'both');
    const ov = both.view([3, 4], 0, 'ov');
    const sv = both.view([4, 3], 12, 'sv');
    expect(() => conv1dCausal(rec, x, w, b, sv, ov)).toThrow(/conv1d_causal: out 'ov' shares a buffer with state 'sv'/);
    expect(() => conv1dCausal(rec, x, w, b, s, x)).toThrow(/conv1d_causal: out 'x' shares a buffer with x 'x'/);
    expect(() => conv1dCausal(rec, x, w, w.view([4], 0, 'wb'), s, out)).not.toThrow();  // inputs may share: all bound read
    s.dispose();
    expect(() => conv1dCausal(new Recorder(g), x, w, b, s, out)).toThrow(/conv1d_causal: tensor 's' \(4, 3\) was disposed/);
    [x, w, b, out, w5, w1, s2, b3, o2, xi, si, both].forEach((t) => t.dispose());
  });
});
