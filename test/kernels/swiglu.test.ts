import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { swiglu } from '../../src/kernels/swiglu';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// silu's f32 exp is good to (3 + 2|g|) ulp: relative error ~1e-6 at |g| ~ 10, then one multiply.
const TOL = { atol: 1e-6, rtol: 1e-5 };

describeGpu('swiglu', () => {
  const gpu = useGpu();

  it.each([[[1]], [[7]], [[64]], [[256]], [[1000]], [[4097]], [[3, 5, 77]]])('shape %j matches the float64 reference', async (shape) => {
    const g = gpu();
    const n = shape.reduce((a, b) => a * b, 1);
    const gate = randn(n * 5 + 1, n, 4);
    const up = randn(n * 5 + 2, n, 2);
    // the tails: exp of a large |gate| must not overflow
    [-100, -30, 30, 100].forEach((v, i) => { if (i * 5 < n) gate[i * 5] = v; });
    const tg = g.upload(gate, shape, { label: 'gate' });
    const tu = g.upload(up, shape, { label: 'up' });
    const out = poisoned(g, shape);
    const rec = new Recorder(g);
    swiglu(rec, tg, tu, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.swiglu(gate, up), TOL, `swiglu ${n}`);
    [tg, tu, out].forEach((t) => t.dispose());
  });

  // (673, 24929) = 65536 * 256 + 1 elements: one more 256-wide workgroup than a
  // grid dimension holds, so grid() makes it 32769 × 2 with one spare workgroup,
  // and the kernel finds its elements with group_index. The inputs cycle through
  // random blocks of prime lengths (cheap to make; a misplaced workgroup reads
  // different values).
  it('shape [673,24929] (a 32769 × 2 grid) matches the float64 reference', async () => {
    const g = gpu();
    const shape = [673, 24929];
    const n = 673 * 24929;
    const cycle = (seed: number, P: number, scale: number) => {
      const block = randn(seed, P, scale);
      const a = new Float32Array(n);
      for (let i = 0; i < n; i += P) a.set(block.subarray(0, Math.min(P, n - i)), i);
      return a;
    };
    const gate = cycle(24929, 4099, 4);
    const up = cycle(24930, 4091, 2);
    const tg = g.upload(gate, shape, { label: 'gate' });
    const tu = g.upload(up, shape, { label: 'up' });
    const out = poisoned(g, shape);
    const rec = new Recorder(g);
    swiglu(rec, tg, tu, out);
    expectClose(await rec.submitAndRead(out), ref.swiglu(gate, up), TOL, `swiglu ${n}`);
    [tg, tu, out].forEach((t) => t.dispose());
  });

  it('rejects bad shapes, dtypes, aliasing and a disposed tensor, naming them', async () => {
    const g = gpu();
    const gate = g.upload(randn(1, 12), [3, 4], { label: 'gate' });
    const up = g.upload(randn(2, 12), [3, 4], { label: 'up' });
    const up43 = g.upload(randn(3, 12), [4, 3], { label: 'up43' });
    const gi = g.upload(new Int32Array(12), [3, 4], { label: 'gi' });
    const out = g.empty([3, 4], 'f32', 'out');
    const rec = new Recorder(g);
    expect(() => swiglu(rec, gate, up43, out)).toThrow(/swiglu: up 'up43' has shape \(4, 3\), expected \(3, 4\)/);
    expect(() => swiglu(rec, gi, up, out)).toThrow(/swiglu: gate 'gi' \(3, 4\) must be f32 or f16, got i32/);
    expect(() => swiglu(rec, gate, up, up)).toThrow(/swiglu: out 'up' shares a buffer with up 'up'/);
    up.dispose();
    expect(() => swiglu(rec, gate, up, out)).toThrow(/swiglu: tensor 'up' \(3, 4\) was disposed/);
    [gate, up43, gi, out].forEach((t) => t.dispose());
  });
});
