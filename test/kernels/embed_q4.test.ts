import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { embedQ4 } from '../../src/kernels/embed_q4';
import { dequantizeQ4, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import * as ref from '../../src/reference/ops';
import { cappedGrid, describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { checkVocabParts } from '../helpers/vocab_parts';

// Each output is m + q*d from f16 d, m and a 4-bit q: q*d is exact in f32, so
// the one f32 rounding of the sum (or of an fma) is the only error, <= 2^-24 relative.
// (atol is not 0 because expectClose divides by the limit.)
const TOL = { atol: 1e-30, rtol: 2 ** -24 };

describeGpu('embed_q4', () => {
  const gpu = useGpu();

  it.each([
    // vocab, dim, tokens, group, ids dtype
    [1, 8, 1, 32, 'i32'], [5, 16, 7, 32, 'u32'], [64, 64, 7, 64, 'i32'], [20, 1000, 3, 32, 'u32'], [3, 4096, 2, 128, 'i32'], [7, 200, 64, 128, 'i32'], [4, 8, 1000, 32, 'u32'],
  ] as const)('vocab %i × dim %i, %i tokens, group %i, %s ids: rows of dequantizeQ4', async (vocab, dim, tokens, group, idType) => {
    const g = gpu();
    const seed = vocab * 31 + dim * 7 + tokens + group;
    const q = quantizeQ4(randn(seed, vocab * dim), vocab, dim, group as Q4GroupSize);
    const ids = randint(seed + 1, tokens, vocab);
    const tt = g.uploadQ4(q, 'table');
    const ti = g.upload(idType === 'i32' ? ids : Uint32Array.from(ids), [tokens], { label: 'ids' });
    const out = poisoned(g, [tokens, dim]);
    const rec = new Recorder(g);
    embedQ4(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.embed(dequantizeQ4(q), ids, vocab, dim), TOL, `embed_q4 ${vocab}×${dim} [${tokens}]`);
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('89 tokens × dim 920 (10235 code words: 40 workgroups) over a 7 × 6 grid (a device limit of 7 per dimension), 2 spare workgroups, match the reference', async () => {
    const g = cappedGrid(gpu(), 7);
    const [vocab, dim, tokens] = [11, 920, 89]; // 920 % 32 = 24: a short last group
    const q = quantizeQ4(randn(920, vocab * dim), vocab, dim, 32);
    const ids = randint(921, tokens, vocab);
    ids[tokens - 1] = -1; // the last row, in the last live workgroup, is a NaN row
    const tt = g.uploadQ4(q, 'table');
    const ti = g.upload(ids, [tokens], { label: 'ids' });
    const out = g.upload(new Float32Array(tokens * dim).fill(7), [tokens, dim], { label: 'out' });
    const rec = new Recorder(g);
    embedQ4(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    expect(Array.from(got.subarray((tokens - 1) * dim)).every(Number.isNaN), 'the last token (id -1) gives NaN').toBe(true);
    const want = ref.embed(dequantizeQ4(q), ids.subarray(0, tokens - 1), vocab, dim);
    expectClose(got.subarray(0, (tokens - 1) * dim), want, TOL, `embed_q4 ${vocab}×${dim} [${tokens}] on a 2-D grid`);
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('a vocabulary split in row parts: each part writes the rows it holds, the last one also the NaN rows', async () => {
    const g = gpu();
    await checkVocabParts(g, 64, 91, {
      upload: (rows, n, dim, label) => (() => { const q = quantizeQ4(rows, n, dim, 32); return { table: g.uploadQ4(q, label), values: dequantizeQ4(q) }; })(),
      lookup: (rec, table, ids, out, part) => embedQ4(rec, table, ids, out, part),
      tol: TOL,
    });
  });

  it.each(['i32', 'u32'] as const)('an id outside [0, V) gives a row of NaN, the others their rows (%s ids)', async (idType) => {
    const g = gpu();
    const [vocab, dim] = [9, 72];
    const q = quantizeQ4(randn(78, vocab * dim), vocab, dim, 64);
    const ids = idType === 'i32' ? Int32Array.from([3, -1, vocab, 0, 2 ** 31 - 1, vocab - 1]) : Uint32Array.from([3, 0xffffffff, vocab, 0, 2 ** 31, vocab - 1]);
    const bad = [1, 2, 4];
    const tt = g.uploadQ4(q, 'table');
    const ti = g.upload(ids, [ids.length], { label: 'ids' });
    // Filled with a finite value, not NaN: the NaN rows must be written by the kernel.
    const out = g.upload(new Float32Array(ids.length * dim).fill(7), [ids.length, dim], { label: 'out' });
    const rec = new Recorder(g);
    embedQ4(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    const table = dequantizeQ4(q);
    for (let t = 0; t < ids.length; t++) {
      const row = Array.from(got.subarray(t * dim, (t + 1) * dim));
      if (bad.includes(t)) expect(row.every(Number.isNaN), `row ${t} (id ${ids[t]}) is all NaN`).toBe(true);
      else expectClose(row, ref.embed(table, [ids[t]], vocab, dim), TOL, `row ${t}`);
    }
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('rejects a non-q4 table, wrong ids or out, and a disposed tensor, naming them', async () => {
    const g = gpu();
    const table = g.uploadQ4(quantizeQ4(randn(1, 24), 3, 8), 'table');
    const tableF = g.upload(randn(2, 24), [3, 8], { label: 'tableF' });
    const ids = g.upload(Int32Array.from([0, 2]), [2], { label: 'ids' });
    const idsF = g.upload(Float32Array.from([0, 2]), [2], { label: 'idsF' });
    const out = g.empty([2, 8], 'f32', 'out');
    const out16 = g.empty([2, 16], 'f32', 'out16');
    const rec = new Recorder(g);
    expect(() => embedQ4(rec, tableF, ids, out)).toThrow(/embed_q4: table 'tableF' \(3, 8\) f32 must be a \(V, D\) q4 matrix/);
    expect(() => embedQ4(rec, table, idsF, out)).toThrow(/embed_q4: ids 'idsF' \(2\) f32 must be a vector of i32 or u32/);
    expect(() => embedQ4(rec, table, ids, out16)).toThrow(/embed_q4: out 'out16' has shape \(2, 16\), expected \(2, 8\)/);
    table.dispose();
    expect(() => embedQ4(rec, table, ids, out)).toThrow(/embed_q4: tensor 'table' \(3, 8\) was disposed/);
    [tableF, ids, idsF, out, out16].forEach((t) => t.dispose());
  });
});
