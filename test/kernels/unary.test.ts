import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { unary, type UnaryOp } from '../../src/kernels/unary';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describe('unary references (CPU)', () => {
  it('erf matches tabulated values (Abramowitz & Stegun table 7.1, and erfc(5) for the tail)', () => {
    const table: [number, number][] = [[0, 0], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [2.9, 0.9999589021219005], [3.5, 0.9999992569016276]];
    for (const [x, want] of table) {
      expect(ref.erf(x)).toBeCloseTo(want, 15);
      expect(ref.erf(-x)).toBeCloseTo(-want, 15);
    }
    // the tail keeps its relative precision: erfc(5) = 1.5374597944280351e-12, erfc(2.9) = 4.109787809945886e-05
    expect(ref.erfc(5) / 1.5374597944280351e-12).toBeCloseTo(1, 13);
    expect(ref.erfc(2.9) / 4.109787809945886e-5).toBeCloseTo(1, 13);
    expect(ref.erfc(-1)).toBeCloseTo(1.842700792949715, 15);
  });

  it('the GELUs and SiLU give hand-checked values', () => {
    // gelu(1) = Phi(1) = 0.8413447460685429; silu(1) = 1 / (1 + e^-1); gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715))
    expect(ref.gelu([1])[0]).toBeCloseTo(0.8413447460685429, 14);
    expect(ref.silu([1])[0]).toBeCloseTo(0.7310585786300049, 14);
    expect(ref.geluTanh([1])[0]).toBeCloseTo(0.8411919906082768, 14);
    // far left tail: gelu(-10) = -10 * Phi(-10) = -10 * 7.619853024160527e-24
    expect(ref.gelu([-10])[0] / -7.619853024160527e-23).toBeCloseTo(1, 12);
  });
});

const REF: Record<UnaryOp, (x: ArrayLike<number>) => Float64Array> = { silu: ref.silu, gelu: ref.gelu, gelu_tanh: ref.geluTanh };

// silu, gelu_tanh: f32 exp is good to (3 + 2|v|) ulp, so the sigmoid's relative error grows to ~1e-6
// at |v| ~ 10. gelu: Phi from A&S 7.1.26 is off by <= 7.5e-8 absolute (half its erf bound) plus f32
// rounding, times |x| <= ~15 here. Both: atol 2e-6 + rtol 1e-5.
const TOL = { atol: 2e-6, rtol: 1e-5 };

describeGpu('unary', () => {
  const gpu = useGpu();

  const cases: [UnaryOp, number[]][] = [];
  for (const op of ['silu', 'gelu', 'gelu_tanh'] as const) {
    cases.push([op, [1]], [op, [7]], [op, [64]], [op, [1000]], [op, [4097]], [op, [3, 333]]);
  }
  it.each(cases)('%s at shape %j matches the float64 reference', async (op, shape) => {
    const g = gpu();
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n * 13 + op.length, n, 4);
    // the tails: large negative inputs (exp must not overflow), large positive, zero
    [-100, -30, -9, 0, 9, 30, 100].forEach((v, i) => { if (i * 3 < n) x[i * 3] = v; });
    const tx = g.upload(x, shape, { label: 'x' });
    const out = poisoned(g, shape);
    const rec = new Recorder(g);
    unary(rec, op, tx, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, REF[op](x), TOL, `${op} ${n}`);
    [tx, out].forEach((t) => t.dispose());
  });

  // 65536 * 256 + 1 elements: one more 256-wide workgroup than a grid dimension
  // holds, so grid() makes it 32769 × 2 with one spare workgroup, and the kernel
  // finds its elements with group_index. The input cycles through a random block
  // of a prime length (4099), so the reference is computed once per block value
  // and a misplaced workgroup reads a different value.
  it('silu over 16777217 elements (a 32769 × 2 grid) matches the float64 reference', async () => {
    const g = gpu();
    const n = 65536 * 256 + 1;
    const P = 4099;
    const block = randn(65537, P, 4);
    const wantBlock = ref.silu(block);
    const x = new Float32Array(n);
    const want = new Float64Array(n);
    for (let i = 0; i < n; i += P) {
      x.set(block.subarray(0, Math.min(P, n - i)), i);
      want.set(wantBlock.subarray(0, Math.min(P, n - i)), i);
    }
    const tx = g.upload(x, [n], { label: 'x' });
    const out = poisoned(g, [n]);
    const rec = new Recorder(g);
    unary(rec, 'silu', tx, out);
    expectClose(await rec.submitAndRead(out), want, TOL, 'silu 16777217');
    [tx, out].forEach((t) => t.dispose());
  });

  it('three ops in one submit each use their own variant', async () => {
    const g = gpu();
    const x = randn(9, 100, 2);
    const tx = g.upload(x, [100], { label: 'x' });
    const outs = (['silu', 'gelu', 'gelu_tanh'] as const).map((op) => [op, poisoned(g, [100], op)] as const);
    const rec = new Recorder(g);
    for (const [op, out] of outs) unary(rec, op, tx, out);
    await rec.submit();
    for (const [op, out] of outs) expectClose(await g.read(out), REF[op](x), TOL, op); // same tolerance as above
    [tx, ...outs.map(([, o]) => o)].forEach((t) => t.dispose());
  });

  it('rejects an unknown op, bad shapes, dtypes, aliasing and a disposed tensor, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const out = g.empty([3, 4], 'f32', 'out');
    const out43 = g.empty([4, 3], 'f32', 'out43');
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    const rec = new Recorder(g);
    expect(() => unary(rec, 'relu' as UnaryOp, x, out)).toThrow(/unary: unknown op 'relu' \(use silu, gelu, gelu_tanh\)/);
    expect(() => unary(rec, 'silu', x, out43)).toThrow(/unary: out 'out43' has shape \(4, 3\), expected \(3, 4\)/);
    expect(() => unary(rec, 'silu', xi, out)).toThrow(/unary: x 'xi' \(3, 4\) must be f32 or f16, got i32/);
    expect(() => unary(rec, 'gelu', x, x)).toThrow(/unary: out 'x' shares a buffer with x 'x'/);
    // disjoint views of one buffer are refused too (WebGPU validates usage per buffer, not per range)
    const both = g.empty([128], 'f32', 'both');
    expect(() => unary(rec, 'silu', both.view([64], 0, 'lo'), both.view([64], 64, 'hi'))).toThrow(/unary: out 'hi' shares a buffer with x 'lo'/);
    both.dispose();
    out.dispose();
    expect(() => unary(rec, 'silu', x, out)).toThrow(/unary: tensor 'out' \(3, 4\) was disposed/);
    [x, out43, xi].forEach((t) => t.dispose());
  });
});
