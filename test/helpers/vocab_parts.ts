// The check every embedding kernel takes for a vocabulary held in row parts
// (VocabMatrix): each part writes the rows it holds and nothing else, the last
// part also the NaN rows of ids outside the vocabulary, and all the parts
// together give the whole table's lookup.

import { expect } from 'vitest';
import type { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import type { Tensor } from '../../src/runtime/tensor';
import type { VocabPart } from '../../src/kernels/checks';
import * as ref from '../../src/reference/ops';
import { randint, randn } from './random';
import { expectClose, type Tolerance } from './compare';

export interface PartedEmbedding {
  /** Uploads rows of the table as a part, and returns it with the values the kernel computes with. */
  upload(rows: Float32Array, n: number, dim: number, label: string): { table: Tensor; values: ArrayLike<number> };
  lookup(rec: Recorder, table: Tensor, ids: Tensor, out: Tensor, part: VocabPart): void;
  tol: Tolerance;
}

/** Parts [0, 128), [128, 256), [256, 300) of a 300-row vocabulary of width `dim`; ids across their edges and past both ends. */
export async function checkVocabParts(g: Gpu, dim: number, seed: number, e: PartedEmbedding): Promise<void> {
  const [V, T] = [300, 40];
  const cuts = [0, 128, 256, V];
  const full = randn(seed, V * dim);
  const ids = randint(seed + 1, T, V);
  ids[3] = V; ids[7] = -1; ids[11] = 127; ids[12] = 128; ids[13] = V - 1;
  const parts = cuts.slice(0, -1).map((lo, i) => ({ lo, hi: cuts[i + 1], ...e.upload(full.subarray(lo * dim, cuts[i + 1] * dim), cuts[i + 1] - lo, dim, `table.${lo}`) }));
  const ti = g.upload(ids, [T], { label: 'ids' });
  const sentinel = 7;
  const out = g.empty([T, dim], 'f32', 'out');
  try {
    // The first part alone: only its rows change.
    g.write(out, new Float32Array(T * dim).fill(sentinel));
    const rec = new Recorder(g);
    e.lookup(rec, parts[0].table, ti, out, { first: 0, total: V });
    const first = (await rec.submitAndRead(out)) as Float32Array;
    // Then every part: the whole table's lookup.
    const rec2 = new Recorder(g);
    parts.forEach(({ lo, table }) => e.lookup(rec2, table, ti, out, { first: lo, total: V }));
    const all = (await rec2.submitAndRead(out)) as Float32Array;
    const row = (a: Float32Array, t: number) => a.subarray(t * dim, (t + 1) * dim);
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      const p = parts.findIndex(({ lo, hi }) => id >= lo && id < hi);
      if (p < 0) {
        expect(Array.from(row(all, t)).every(Number.isNaN), `token ${t}: id ${id} gives NaN`).toBe(true);
      } else {
        const { lo, hi, values } = parts[p];
        expectClose(row(all, t), ref.embed(values, [id - lo], hi - lo, dim), e.tol, `token ${t}, id ${id}`);
      }
      if (p !== 0) expect(Array.from(row(first, t)).every((v) => v === sentinel), `token ${t}: id ${id} is not the first part's`).toBe(true);
    }
    expect(() => e.lookup(new Recorder(g), parts[1].table, ti, out, { first: 200, total: V })).toThrow(/table 'table.128' \(128, \d+\) cannot be rows \[200, 328\) of a 300-row vocabulary/);
  } finally {
    [...parts.map((p) => p.table), ti, out].forEach((t) => t.dispose());
  }
}
