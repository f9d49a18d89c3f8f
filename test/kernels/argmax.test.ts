import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';
import { argmaxRef } from '../../src/reference/sampling';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn } from '../helpers/random';

// An index is exact: every check below is equality (no tolerance).
describeGpu('argmax', () => {
  const gpu = useGpu();

  it.each([1, 7, 256, 1000, 4097, 50280])('V = %i: random rows, then with the maximum planted several times (first index wins)', async (V) => {
    const g = gpu();
    const x = randn(V * 31 + 5, V, 4);
    // three copies: the random row, and the same row with its max copied to
    // later and earlier random positions (a tie whose first index must win)
    const tied = Float32Array.from(x);
    const spots = randint(V + 17, 4, V);
    const peak = tied.reduce((a, b) => Math.max(a, b), -Infinity) + 1;
    spots.forEach((i) => (tied[i] = peak));
    const tx = g.upload(x, [V], { label: 'x' });
    const tt = g.upload(tied, [V], { label: 'tied' });
    const out = poisoned(g, [2], 'out', 'u32');
    const rec = new Recorder(g);
    argmax(rec, tx, out, undefined, 0);
    argmax(rec, tt, out, undefined, 1);
    const got = await rec.submitAndRead(out);
    expect(got[0]).toBe(argmaxRef(x));
    expect(got[1]).toBe(argmaxRef(tied));
    expect(got[1]).toBe(Math.min(...spots));
    [tx, tt, out].forEach((t) => t.dispose());
  });

  it.each([[3, 1000], [2, 50280], [5, 7]])('(rows %i, V %i): selects each row, the last by default (rows start off the 256-byte grid)', async (rows, V) => {
    const g = gpu();
    const x = randn(rows * 101 + V, rows * V, 2);
    const tx = g.upload(x, [rows, V], { label: 'x' });
    const out = poisoned(g, [rows + 1], 'out', 'u32');
    const rec = new Recorder(g);
    for (let r = 0; r < rows; r++) argmax(rec, tx, out, r, r);
    argmax(rec, tx, out, undefined, rows);
    const got = await rec.submitAndRead(out);
    for (let r = 0; r < rows; r++) expect(got[r], `row ${r}`).toBe(argmaxRef(x.subarray(r * V, (r + 1) * V)));
    expect(got[rows]).toBe(got[rows - 1]);
    [tx, out].forEach((t) => t.dispose());
  });

  // logitsRow binds from the 256-byte boundary at or before the row: a view at
  // an element offset off that grid, rows starting off it (and row 1 exactly on
  // it, base 0), maxima at a row's first and last element, and larger values
  // just outside the rows that must never be read.
  it('selects rows of a view at an element offset (3) of a larger buffer, never reading past the row', async () => {
    const g = gpu();
    const [rows, V, off] = [4, 61, 3]; // row r starts at element 3 + 61 r: row 1 at 64 (byte 256)
    const big = new Float32Array(off + rows * V + 5).fill(50); // outside the rows: above every logit
    const x = randn(6162, rows * V, 1);
    x[V - 1] = 9; // row 0: its last element is the largest
    x[V] = 9; // row 1: its first
    x[3 * V - 1] = 9; // row 2: its last, just before row 3
    big.set(x, off);
    const tb = g.upload(big, [big.length], { label: 'big' });
    const view = tb.view([rows, V], off, 'logits');
    const out = poisoned(g, [rows + 2], 'out', 'u32');
    const rec = new Recorder(g);
    for (let r = 0; r < rows; r++) argmax(rec, view, out, r, r);
    argmax(rec, view, out, undefined, rows); // the last row by default
    argmax(rec, tb.view([V], off + 2 * V, 'row2'), out, undefined, rows + 1); // a 1-D view of row 2
    const got = await rec.submitAndRead(out);
    const want = Array.from({ length: rows }, (_, r) => argmaxRef(x.subarray(r * V, (r + 1) * V)));
    expect(want.slice(0, 3)).toEqual([V - 1, 0, V - 1]);
    expect(Array.from(got)).toEqual([...want, want[rows - 1], want[2]]);
    tb.dispose();
    out.dispose();
  });

  it('follows torch.argmax on NaN (the first NaN wins), -inf, -0 vs +0 and an all -inf row', async () => {
    const g = gpu();
    const V = 600;
    const cases: Float32Array[] = [];
    const withNaN = randn(77, V);
    withNaN[400] = NaN;
    withNaN[333] = NaN;
    withNaN[10] = Infinity;
    cases.push(withNaN);
    const zeros = new Float32Array(V).fill(-Infinity);
    zeros[300] = -0;
    zeros[450] = 0;
    zeros[500] = -0;
    cases.push(zeros);
    cases.push(new Float32Array(V).fill(-Infinity));
    const negInf = randn(78, V);
    negInf[0] = -Infinity;
    cases.push(negInf);
    const ts = cases.map((c, i) => g.upload(c, [V], { label: `case${i}` }));
    const out = poisoned(g, [cases.length], 'out', 'u32');
    const rec = new Recorder(g);
    ts.forEach((t, i) => argmax(rec, t, out, undefined, i));
    const got = await rec.submitAndRead(out);
    expect(Array.from(got)).toEqual(cases.map(argmaxRef));
    expect(Array.from(got.subarray(0, 3))).toEqual([333, 300, 0]); // hand-checked
    [...ts, out].forEach((t) => t.dispose());
  });

  it('rejects bad logits, out, row and outIndex, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const out = g.empty([2], 'u32', 'out');
    const rec = new Recorder(g);
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    expect(() => argmax(rec, xi, out)).toThrow(/argmax: logits 'xi' \(3, 4\) must be f32 or f16, got i32/);
    const x3 = g.upload(randn(2, 8), [2, 2, 2], { label: 'x3' });
    expect(() => argmax(rec, x3, out)).toThrow(/argmax: logits 'x3' has shape \(2, 2, 2\), expected \(V\) or \(rows, V\)/);
    const of = g.empty([2], 'f32', 'outf');
    expect(() => argmax(rec, x, of)).toThrow(/argmax: out 'outf' \(2\) f32 must be a \(n\) u32 tensor/);
    expect(() => argmax(rec, x, out, 3)).toThrow(/argmax: row 3 is out of range for logits 'x' \(3, 4\) \(3 rows\)/);
    expect(() => argmax(rec, x, out, 0.5)).toThrow(/argmax: row 0.5 is out of range/);
    expect(() => argmax(rec, x, out, 0, 2)).toThrow(/argmax: outIndex 2 is out of range for out 'out' \(2\)/);
    x.dispose();
    expect(() => argmax(rec, x, out)).toThrow(/argmax: tensor 'x' \(3, 4\) was disposed/);
    [out, xi, x3, of].forEach((t) => t.dispose());
  });
});
