import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { embedQ8 } from '../../src/kernels/embed_q8';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import { quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { checkVocabParts } from '../helpers/vocab_parts';

// Each output is m + q*d from f16 d, m and an 8-bit q: q*d needs at most
// 11 + 8 = 19 significant bits, so it is exact in f32, and the one f32
// rounding of the sum (or of an fma) is the only error, <= 2^-24 relative.
// (atol is not 0 because expectClose divides by the limit.)
const TOL = { atol: 1e-30, rtol: 2 ** -24 };

describeGpu('embed_q8', () => {
  const gpu = useGpu();

  it.each([
    // vocab, dim, tokens, group, ids dtype: dim 4 (one code word), dim % 8 == 4, dim % G != 0
    [1, 4, 1, 32, 'i32'], [5, 12, 7, 32, 'u32'], [64, 64, 7, 64, 'i32'], [20, 1000, 3, 32, 'u32'], [3, 4096, 2, 128, 'i32'], [7, 204, 64, 128, 'i32'], [4, 8, 1000, 32, 'u32'], [6, 100, 9, 64, 'u32'],
  ] as const)('vocab %i × dim %i, %i tokens, group %i, %s ids: rows of dequantizeQ8', async (vocab, dim, tokens, group, idType) => {
    const g = gpu();
    const seed = vocab * 31 + dim * 7 + tokens + group + 5;
    const q = quantizeQ8(randn(seed, vocab * dim), vocab, dim, group as Q4GroupSize);
    const ids = randint(seed + 1, tokens, vocab);
    const tt = g.uploadQ8(q, 'table');
    const ti = g.upload(idType === 'i32' ? ids : Uint32Array.from(ids), [tokens], { label: 'ids' });
    const out = poisoned(g, [tokens, dim]);
    const rec = new Recorder(g);
    embedQ8(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.embed(dequantizeQ8(q), ids, vocab, dim), TOL, `embed_q8 ${vocab}×${dim} [${tokens}]`);
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('a vocabulary split in row parts: each part writes the rows it holds, the last one also the NaN rows', async () => {
    const g = gpu();
    await checkVocabParts(g, 68, 191, {
      upload: (rows, n, dim, label) => (() => { const q = quantizeQ8(rows, n, dim, 32); return { table: g.uploadQ8(q, label), values: dequantizeQ8(q) }; })(),
      lookup: (rec, table, ids, out, part) => embedQ8(rec, table, ids, out, part),
      tol: TOL,
    });
  });

  it.each(['i32', 'u32'] as const)('an id outside [0, V) gives a row of NaN, the others their rows (%s ids)', async (idType) => {
    const g = gpu();
    const [vocab, dim] = [9, 76];
    const q = quantizeQ8(randn(178, vocab * dim), vocab, dim, 64);
    const ids = idType === 'i32' ? Int32Array.from([3, -1, vocab, 0, 2 ** 31 - 1, vocab - 1]) : Uint32Array.from([3, 0xffffffff, vocab, 0, 2 ** 31, vocab - 1]);
    const bad = [1, 2, 4];
    const tt = g.uploadQ8(q, 'table');
    const ti = g.upload(ids, [ids.length], { label: 'ids' });
    // Filled with a finite value, not NaN: the NaN rows must be written by the kernel.
    const out = g.upload(new Float32Array(ids.length * dim).fill(7), [ids.length, dim], { label: 'out' });
    const rec = new Recorder(g);
    embedQ8(rec, tt, ti, out);
    const got = await rec.submitAndRead(out);
    const table = dequantizeQ8(q);
    for (let t = 0; t < ids.length; t++) {
      const row = Array.from(got.subarray(t * dim, (t + 1) * dim));
      if (bad.includes(t)) expect(row.every(Number.isNaN), `row ${t} (id ${ids[t]}) is all NaN`).toBe(true);
      else expectClose(row, ref.embed(table, [ids[t]], vocab, dim), TOL, `row ${t}`);
    }
    [tt, ti, out].forEach((t) => t.dispose());
  });

  it('rejects a non-q8 table, wrong ids or out, and a disposed tensor, naming them', async () => {
    const g = gpu();
    const table = g.uploadQ8(quantizeQ8(randn(11, 24), 3, 8), 'table');
    const tableF = g.upload(randn(12, 24), [3, 8], { label: 'tableF' });
    const table4 = g.uploadQ4(quantizeQ4(randn(13, 24), 3, 8), 'table4');
    const ids = g.upload(Int32Array.from([0, 2]), [2], { label: 'ids' });
    const idsF = g.upload(Float32Array.from([0, 2]), [2], { label: 'idsF' });
    const out = g.empty([2, 8], 'f32', 'out');
    const out16 = g.empty([2, 16], 'f32', 'out16');
    const rec = new Recorder(g);
    expect(() => embedQ8(rec, tableF, ids, out)).toThrow(/embed_q8: table 'tableF' \(3, 8\) f32 must be a \(V, D\) q8 matrix/);
    expect(() => embedQ8(rec, table4, ids, out)).toThrow(/embed_q8: table 'table4' \(3, 8\) q4 must be a \(V, D\) q8 matrix/);
    expect(() => embedQ8(rec, table, idsF, out)).toThrow(/embed_q8: ids 'idsF' \(2\) f32 must be a vector of i32 or u32/);
    expect(() => embedQ8(rec, table, ids, out16)).toThrow(/embed_q8: out 'out16' has shape \(2, 16\), expected \(2, 8\)/);
    table.dispose();
    expect(() => embedQ8(rec, table, ids, out)).toThrow(/embed_q8: tensor 'table' \(3, 8\) was disposed/);
    [tableF, table4, ids, idsF, out, out16].forEach((t) => t.dispose());
  });
});
