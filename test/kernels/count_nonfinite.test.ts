import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { countNonfinite } from '../../src/kernels/count_nonfinite';
import { countNonfiniteRef } from '../../src/reference/sampling';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn } from '../helpers/random';

const SPECIAL = [NaN, Infinity, -Infinity];

/** A random row with `bad` NaN/±inf values planted at random positions (repeats allowed). */
function rowWith(seed: number, V: number, bad: number): Float32Array {
  const x = randn(seed, V, 1e30); // large but finite: only the planted values count
  const spots = randint(seed + 1, bad, V);
  spots.forEach((i, j) => (x[i] = SPECIAL[j % 3]));
  return x;
}

// A count is exact: every check is equality.
describeGpu('count_nonfinite', () => {
  const gpu = useGpu();

  it.each([1, 7, 255, 257, 4097, 50280])('V = %i: counts NaN and ±inf (none, one, many), each into its own slot', async (V) => {
    const g = gpu();
    const rows = [0, 1, Math.min(V, 40)].map((bad, i) => rowWith(V * 13 + i, V, bad));
    const tensors = rows.map((x, i) => g.upload(x, [V], { label: `x${i}` }));
    const out = poisoned(g, [rows.length + 1], 'out', 'u32');
    const rec = new Recorder(g);
    tensors.forEach((t, i) => countNonfinite(rec, t, out, undefined, i));
    const got = await rec.submitAndRead(out);
    rows.forEach((x, i) => expect(got[i], `row ${i}`).toBe(countNonfiniteRef(x)));
    expect(got[rows.length], 'a slot nobody wrote').toBe(0xdeadbeef);
    [...tensors, out].forEach((t) => t.dispose());
  });

  it.each([[3, 1000], [4, 50280]])('(rows %i, V %i): counts the chosen row only, the last by default (rows off the 256-byte grid)', async (rows, V) => {
    const g = gpu();
    const x = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) x.set(rowWith(r * 7 + V, V, 3 * r), r * V);
    const tx = g.upload(x, [rows, V], { label: 'x' });
    const out = poisoned(g, [rows + 1], 'out', 'u32');
    const rec = new Recorder(g);
    for (let r = 0; r < rows; r++) countNonfinite(rec, tx, out, r, r);
    countNonfinite(rec, tx, out, undefined, rows);
    const got = await rec.submitAndRead(out);
    for (let r = 0; r < rows; r++) expect(got[r], `row ${r}`).toBe(countNonfiniteRef(x.subarray(r * V, (r + 1) * V)));
    expect(got[rows]).toBe(got[rows - 1]);
    [tx, out].forEach((t) => t.dispose());
  });

  it('refuses a bad row, out slot, out dtype or a disposed tensor with an Error naming the op', () => {
    const g = gpu();
    const x = g.upload(new Float32Array(20), [2, 10], { label: 'x' });
    const out = g.empty([2], 'u32', 'out');
    const f32out = g.empty([2], 'f32', 'f32out');
    const rec = new Recorder(g);
    expect(() => countNonfinite(rec, x, out, 2)).toThrow(/count_nonfinite: row 2 is out of range for logits 'x' \(2, 10\)/);
    expect(() => countNonfinite(rec, x, out, 0, 2)).toThrow(/count_nonfinite: outIndex 2 is out of range for out 'out'/);
    expect(() => countNonfinite(rec, x, f32out)).toThrow(/count_nonfinite: out 'f32out' \(2\) f32 must be a \(n\) u32 tensor/);
    x.dispose();
    expect(() => countNonfinite(rec, x, out)).toThrow(/count_nonfinite/);
    [out, f32out].forEach((t) => t.dispose());
  });
});
