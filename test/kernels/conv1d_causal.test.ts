import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { conv1dCausal } from '../../src/kernels/conv1d_causal';
import { conv1dCausalRef } from '../../src/reference/mamba_ops';
import type { Gpu } from '../../src/runtime/gpu';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { roundF16 } from '../../src/runtime/f16';

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

/** Runs conv1dCausal on the GPU over chunks of x of the given lengths, the state carried on the GPU (x, state and out in `dtype`). */
async function runChunks(g: Gpu, c: Case, lens: number[], data: ReturnType<typeof inputs>, dtype: 'f32' | 'f16' = 'f32'): Promise<{ out: Float32Array; state: Float32Array }> {
  const { Di, Kc } = c;
  const tw = g.upload(data.w, [Di, Kc], { label: 'w' });
  const tb = data.b ? g.upload(data.b, [Di], { label: 'b' }) : null;
  const ts = g.upload(data.state, [Di, Kc - 1], { label: 'state', category: 'cache', dtype });
  const out = new Float32Array(lens.reduce((a, b) => a + b, 0) * Di);
  try {
    let t0 = 0;
    for (const T of lens) {
      const tx = g.upload(data.x.subarray(t0 * Di, (t0 + T) * Di), [T, Di], { label: 'x', dtype });
      const to = poisoned(g, [T, Di], 'out', dtype);
      try {
        const rec = new Recorder(g);
        conv1dCausal(rec, tx, tw, tb, ts, to);
        out.set((await rec.submitAndRead(to)) as Float32Array, t0 * Di);
      } finally {
        [tx, to].forEach((t) => t.dispose());
      }
      t0 += T;
    }
    return { out, state: (await new Recorder(g).submitAndRead(ts)) as Float32Array };
  } finally {
    [tw, tb, ts].forEach((t) => t?.dispose());
  }
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
    // the widest kernel (Kc-1 = 7 of TT = 8): T < Kc-1 (most of the old state shifts through), T = Kc-1, T = TT exactly
    [3, 10, 8, false], [7, 6, 8, true], [8, 40, 8, true],
    // T a multiple of the tile (TT = 8): every tile full, the new state read from x rather than the window
    [16, 20, 3, true], [24, 9, 8, false],
    // widths 3, 6 and 7; T just over a tile, so the new state spans the inputs of two tiles; T < Kc-1 with Kc 6
    [9, 13, 6, true], [10, 5, 7, false], [5, 300, 6, true],
    // one tile, channels over a workgroup of 256 invocations (one live lane in the second)
    [8, 257, 2, true],
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

  it.each([
    // Kc 8: parts shorter than Kc-1, exactly TT, one token, over two tiles, each carrying the state to the next
    [8, [3, 4, 8, 1, 17, 2, 9]],
    // Kc 3: parts of whole tiles and of one token
    [3, [1, 8, 2, 16, 5]],
  ])('Kc %i: the state carries bitwise through parts %j of every size class, and matches the reference', async (Kc, lens) => {
    const T = lens.reduce((a, b) => a + b, 0);
    const c = { T, Di: 21, Kc, bias: Kc % 2 === 0, seed: 5150 + Kc };
    const data = inputs(c);
    const whole = await runChunks(gpu(), c, [T], data);
    const parts = await runChunks(gpu(), c, lens, data);
    expect(Array.from(parts.out)).toEqual(Array.from(whole.out));
    expect(Array.from(parts.state)).toEqual(Array.from(whole.state));
    const want = conv1dCausalRef(data.x, data.w, data.b, data.state, T, 21, Kc);
    expectClose(whole.out, want.out, TOL, `conv1d_causal Kc ${Kc} whole`);
    expectClose(parts.state, want.state, { atol: 0, rtol: 0 }, `conv1d_causal Kc ${Kc} state after parts`);
  });

  it('runs with f16 activations and an f16 state where the adapter has shader-f16, and says so where it has not', async () => {
    const g = gpu();
    const c = { T: 19, Di: 37, Kc: 4, bias: true, seed: 1616 };
    const data = inputs(c);
    if (!g.report.features.shaderF16) {
      await expect(runChunks(g, c, [c.T], data, 'f16')).rejects.toThrow(/conv1d_causal: f16 needs the shader-f16 feature/);
      return;
    }
    const xh = Float32Array.from(data.x, roundF16);  // x as the f16 run sees it
    const want = conv1dCausalRef(xh, data.w, data.b, Float32Array.from(data.state, roundF16), c.T, c.Di, c.Kc);
    const got = await runChunks(g, c, [2, 17], data, 'f16');  // a part shorter than Kc-1, then two tiles
    // f32 arithmetic on the f16 inputs, then one rounding of out to f16 (relative 2^-11)
    expectClose(got.out, want.out, { atol: TOL.atol, rtol: 1e-3 }, 'conv1d_causal f16 out');
    expectClose(got.state, want.state, { atol: 0, rtol: 0 }, 'conv1d_causal f16 state (copies of the f16 inputs: exact)');
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
