import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { gatedAdd } from '../../src/kernels/gated_add';
import { describeGpu, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describeGpu('gated_add', () => {
  const gpu = useGpu();

  // One f32 exp, division and fused add per element: atol 1e-6 on O(3) values, rtol 1e-6.
  it.each([[1, 1], [3, 64], [17, 300], [300, 97]])('R %i × C %i: acc += sigmoid(gate) * x, against float64', async (R, C) => {
    const g = gpu();
    const [acc, gate, x] = [randn(R * 7 + C, R * C), randn(R + 11, R, 3), randn(R * C + 5, R * C)];
    const ta = g.upload(acc, [R, C], { label: 'acc' });
    const tg = g.upload(gate, [R, 1], { label: 'gate' });
    const tx = g.upload(x, [R, C], { label: 'x' });
    const rec = new Recorder(g);
    gatedAdd(rec, ta, tg, tx);
    const want = Float64Array.from(acc, (a, i) => a + x[i] / (1 + Math.exp(-gate[Math.floor(i / C)])));
    expectClose(await rec.submitAndRead(ta), want, { atol: 1e-6, rtol: 1e-6 }, `gated_add ${R}×${C}`);
    [ta, tg, tx].forEach((t) => t.dispose());
  });

  it('rejects a gate of the wrong length, a mismatched x and aliasing, naming them', () => {
    const g = gpu();
    const acc = g.upload(randn(1, 12), [3, 4], { label: 'acc' });
    const gate4 = g.upload(randn(2, 4), [4], { label: 'gate4' });
    const gate = g.upload(randn(3, 3), [3], { label: 'gate' });
    const x = g.upload(randn(4, 8), [2, 4], { label: 'x' });
    const rec = new Recorder(g);
    expect(() => gatedAdd(rec, acc, gate4, acc)).toThrow(/gated_add: gate 'gate4' \(4\) f32 must be \(3\) or \(3, 1\) f32/);
    expect(() => gatedAdd(rec, acc, gate, x)).toThrow(/gated_add: x 'x' \(2, 4\) f32 does not match 'acc' \(3, 4\) f32/);
    expect(() => gatedAdd(rec, acc, gate, acc)).toThrow(/gated_add: acc 'acc' shares a buffer with x 'acc'/);
    [acc, gate4, gate, x].forEach((t) => t.dispose());
  });
});
