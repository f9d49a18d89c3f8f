import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { binary, type BinaryOp } from '../../src/kernels/binary';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// One f32 add or multiply of f32 inputs: correctly rounded, <= 2^-24 relative (the 1e-30 atol only
// keeps expectClose's limit above 0 where the result is 0).
const TOL = { atol: 1e-30, rtol: 2 ** -24 };

describeGpu('binary', () => {
  const gpu = useGpu();

  const cases: [BinaryOp, number[], 'full' | 'row'][] = [];
  for (const op of ['add', 'mul'] as const) {
    for (const bShape of ['full', 'row'] as const) {
      cases.push([op, [1], bShape], [op, [7], bShape], [op, [3, 64], bShape], [op, [1000], bShape], [op, [4097], bShape], [op, [5, 3, 67], bShape]);
    }
  }
  it.each(cases)('%s at shape %j with b %s matches the float64 reference', async (op, shape, bShape) => {
    const g = gpu();
    const n = shape.reduce((x, y) => x * y, 1);
    const dim = shape[shape.length - 1];
    const seed = n * 17 + (op === 'add' ? 0 : 1) + (bShape === 'row' ? 2 : 0);
    const a = randn(seed, n);
    const b = randn(seed + 1, bShape === 'row' ? dim : n);
    const ta = g.upload(a, shape, { label: 'a' });
    const tb = g.upload(b, bShape === 'row' ? [dim] : shape, { label: 'b' });
    const out = poisoned(g, shape);
    const rec = new Recorder(g);
    binary(rec, op, ta, tb, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.binary(op, a, b), TOL, `${op} ${shape.join('×')} b ${bShape}`);
    [ta, tb, out].forEach((t) => t.dispose());
  });

  // (673, 24929) = 65536 * 256 + 1 elements: one more 256-wide workgroup than a
  // grid dimension holds, so grid() makes it 32769 × 2 with one spare workgroup,
  // and the kernel finds its elements with group_index. a cycles through a random
  // block of a prime length (cheap to make; a misplaced workgroup reads a
  // different value); the row b has its own length, 24929.
  it.each([['add', 'full'], ['mul', 'row']] as const)('%s over shape [673,24929] (a 32769 × 2 grid) with b %s matches the float64 reference', async (op, bShape) => {
    const g = gpu();
    const shape = [673, 24929];
    const n = 673 * 24929;
    const cycle = (seed: number, len: number, P: number) => {
      const block = randn(seed, P);
      const a = new Float32Array(len);
      for (let i = 0; i < len; i += P) a.set(block.subarray(0, Math.min(P, len - i)), i);
      return a;
    };
    const a = cycle(op === 'add' ? 673 : 674, n, 4099);
    const b = bShape === 'row' ? randn(24929, 24929) : cycle(24930, n, 4091);
    const ta = g.upload(a, shape, { label: 'a' });
    const tb = g.upload(b, bShape === 'row' ? [24929] : shape, { label: 'b' });
    const out = poisoned(g, shape);
    const rec = new Recorder(g);
    binary(rec, op, ta, tb, out);
    expectClose(await rec.submitAndRead(out), ref.binary(op, a, b), TOL, `${op} ${n} b ${bShape}`);
    [ta, tb, out].forEach((t) => t.dispose());
  });

  it('rejects an unknown op, bad shapes, dtypes, aliasing and a disposed tensor, naming them', async () => {
    const g = gpu();
    const a = g.upload(randn(1, 12), [3, 4], { label: 'a' });
    const b = g.upload(randn(2, 12), [3, 4], { label: 'b' });
    const b3 = g.upload(randn(3, 3), [3], { label: 'b3' });
    const bi = g.upload(new Int32Array(4), [4], { label: 'bi' });
    const ai = g.upload(new Int32Array(12), [3, 4], { label: 'ai' });
    const out = g.empty([3, 4], 'f32', 'out');
    const out12 = g.empty([12], 'f32', 'out12');
    const rec = new Recorder(g);
    expect(() => binary(rec, 'sub' as BinaryOp, a, b, out)).toThrow(/binary: unknown op 'sub' \(use add, mul\)/);
    expect(() => binary(rec, 'add', a, b3, out)).toThrow(/binary: b 'b3' has shape \(3\), expected \(3, 4\) like a 'a' or a row \(4\)/);
    expect(() => binary(rec, 'add', a, bi, out)).toThrow(/binary: b 'bi' \(4\) must be f32 like a 'a', got i32/);
    expect(() => binary(rec, 'add', ai, b, out)).toThrow(/binary: a 'ai' \(3, 4\) must be f32 or f16, got i32/);
    expect(() => binary(rec, 'mul', a, b, out12)).toThrow(/binary: out 'out12' has shape \(12\), expected \(3, 4\)/);
    expect(() => binary(rec, 'mul', a, b, b)).toThrow(/binary: out 'b' shares a buffer with b 'b'/);
    expect(() => binary(rec, 'mul', a, b, a)).toThrow(/binary: out 'a' shares a buffer with a 'a'/);
    b.dispose();
    expect(() => binary(rec, 'add', a, b, out)).toThrow(/binary: tensor 'b' \(3, 4\) was disposed/);
    [a, b3, bi, ai, out, out12].forEach((t) => t.dispose());
  });
});
