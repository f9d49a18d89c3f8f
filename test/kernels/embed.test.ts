import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { embed } from '../../src/kernels/embed';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { checkVocabParts } from '../helpers/vocab_parts';

// A gather copies f32 values: exact. (atol is not 0 because expectClose divides by the limit.)
const EXACT = { atol: 1e-30, rtol: 0 };

describeGpu('embed', () => {
  const gpu = useGpu();

  it.each([
    // vocab, dim, tokens, ids dtype
    [1, 1, 1, 'i32'], [5, 7, 3, 'u32'], [64, 64, 7, 'i32'], [50, 1000, 4, 'u32'], [10, 4097, 2, 'i32'], [13, 7, 1000, 'i32'],
  ] as const)('vocab %i × dim %i, %i tokens of %s ids, matches the reference', async (vocab, dim, tokens, idType) => {
    const g = gpu();
    const seed = vocab * 31 + dim * 7 + tokens;
    const table = randn(seed, vocab * dim);
    const ids = randint(seed + 1, tokens, vocab);
    const tt = g.upload(table, [vocab, dim], { label: 'table' });
    const ti = g.upload(idType === 'i32' ? ids : Uint32Array.from(ids), [tokens], { label: 'ids' });
    const out = poisoned(g, [tokens, dim]);
    const rec = new Recorder(g);
    embed(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.embed(table, ids, vocab, dim), EXACT, `embed ${vocab}×${dim} [${tokens}]`);
    [tt, ti, out].forEach((t) => t.dispose());
  });

  // 673 tokens × dim 24929 = 65536 * 256 + 1 outputs: one more 256-wide
  // workgroup than a grid dimension holds, so grid() makes it 32769 × 2 with one
  // spare workgroup, and the kernel finds its element with group_index.
  it('673 tokens × dim 24929 (a 32769 × 2 grid), with an out-of-range id, match the reference', async () => {
    const g = gpu();
    const [vocab, dim, tokens] = [6, 24929, 673];
    const table = randn(24929, vocab * dim);
    const ids = randint(24930, tokens, vocab);
    ids[tokens - 1] = vocab; // the last row, in the second row of the grid, is a NaN row
    const tt = g.upload(table, [vocab, dim], { label: 'table' });
    const ti = g.upload(ids, [tokens], { label: 'ids' });
    const out = g.upload(new Float32Array(tokens * dim).fill(7), [tokens, dim], { label: 'out' });
    const rec = new Recorder(g);
    embed(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    const want = ref.embed(table, ids, vocab, dim);
    expect(Array.from(got.subarray((tokens - 1) * dim)).every(Number.isNaN), 'the last token (id V) gives NaN').toBe(true);
    expectClose(got.subarray(0, (tokens - 1) * dim), want.subarray(0, (tokens - 1) * dim), EXACT, `embed ${vocab}×${dim} [${tokens}]`);
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('a vocabulary split in row parts: each part writes the rows it holds, the last one also the NaN rows', async () => {
    const g = gpu();
    await checkVocabParts(g, 64, 91, {
      upload: (rows, n, dim, label) => ({ table: g.upload(rows, [n, dim], { label }), values: rows }),
      lookup: (rec, table, ids, out, part) => embed(rec, table, ids, out, part),
      tol: EXACT,
    });
  });

  it.each(['i32', 'u32'] as const)('an id outside [0, V) gives a row of NaN, the others their rows (%s ids)', async (idType) => {
    const g = gpu();
    const [vocab, dim] = [9, 37];
    const table = randn(77, vocab * dim);
    const ids = idType === 'i32' ? Int32Array.from([3, -1, vocab, 0, 2 ** 31 - 1, vocab - 1]) : Uint32Array.from([3, 0xffffffff, vocab, 0, 2 ** 31, vocab - 1]);
    const bad = [1, 2, 4];
    const tt = g.upload(table, [vocab, dim], { label: 'table' });
    const ti = g.upload(ids, [ids.length], { label: 'ids' });
    // Filled with a finite value, not NaN: the NaN rows must be written by the kernel.
    const out = g.upload(new Float32Array(ids.length * dim).fill(7), [ids.length, dim], { label: 'out' });
    const rec = new Recorder(g);
    embed(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    for (let t = 0; t < ids.length; t++) {
      const row = Array.from(got.subarray(t * dim, (t + 1) * dim));
      if (bad.includes(t)) expect(row.every(Number.isNaN), `row ${t} (id ${ids[t]}) is all NaN`).toBe(true);
      else expectClose(row, ref.embed(table, [ids[t]], vocab, dim), EXACT, `row ${t}`);
    }
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('rejects a wrong table, ids or out, and a disposed tensor, naming them', async () => {
    const g = gpu();
    const table = g.upload(randn(1, 12), [3, 4], { label: 'table' });
    const ids = g.upload(Int32Array.from([0, 2]), [2], { label: 'ids' });
    const idsF = g.upload(Float32Array.from([0, 2]), [2], { label: 'idsF' });
    const ids2d = g.upload(Int32Array.from([0, 2]), [1, 2], { label: 'ids2d' });
    const tableI = g.upload(new Int32Array(12), [3, 4], { label: 'tableI' });
    const out = g.empty([2, 4], 'f32', 'out');
    const out3 = g.empty([3, 4], 'f32', 'out3');
    const outI = g.empty([2, 4], 'i32', 'outI');
    const rec = new Recorder(g);
    expect(() => embed(rec, tableI, ids, out)).toThrow(/embed: table 'tableI' \(3, 4\) i32 must be a \(V, D\) f32 matrix/);
    expect(() => embed(rec, table, idsF, out)).toThrow(/embed: ids 'idsF' \(2\) f32 must be a vector of i32 or u32/);
    expect(() => embed(rec, table, ids2d, out)).toThrow(/embed: ids 'ids2d' \(1, 2\) i32 must be a vector/);
    expect(() => embed(rec, table, ids, out3)).toThrow(/embed: out 'out3' has shape \(3, 4\), expected \(2, 4\)/);
    expect(() => embed(rec, table, ids, outI)).toThrow(/embed: out 'outI' \(2, 4\) must be f32 or f16, got i32/);
    const both = g.empty([128], 'f32', 'both');
    expect(() => embed(rec, both.view([2, 4], 0, 'tv'), ids, both.view([2, 4], 64, 'ov'))).toThrow(/embed: out 'ov' shares a buffer with table 'tv'/);
    both.dispose();
    ids.dispose();
    expect(() => embed(rec, table, ids, out)).toThrow(/embed: tensor 'ids' \(2\) was disposed/);
    [table, idsF, ids2d, tableI, out, out3, outI].forEach((t) => t.dispose());
  });
});
