import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './embed_q8.wgsl?raw';
import type { Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import type { VocabPart } from './checks';
import { dispatchQuantEmbed } from './embed_q4';

const kernel = defineKernel({ name: 'embed_q8', source, libs: [lib.common, lib.embedQuant] });

/**
 * out[t] = dequantized row ids[t] of a q8 table (V, D); ids (T) i32 or u32;
 * out (T, D) activation type; an id outside [0, V) gives a NaN row. With
 * `part`, the table holds rows [first, first + V) of a `total`-row vocabulary.
 */
export function embedQ8(rec: Recorder, table: Tensor, ids: Tensor, out: Tensor, part?: VocabPart): void {
  dispatchQuantEmbed(rec, kernel, 'q8', table, ids, out, part);
}
