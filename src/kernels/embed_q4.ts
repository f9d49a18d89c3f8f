import { defineKernel, grid, type Kernel } from './kernel';
import { lib } from './lib';
import source from './embed_q4.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectIds, expectPart, expectShape, type VocabPart } from './checks';

const kernel = defineKernel({ name: 'embed_q4', source, libs: [lib.common, lib.embedQuant] });
const WG = 256;

/**
 * out[t] = dequantized row ids[t] of a q4 table (V, D); ids (T) i32 or u32;
 * out (T, D) activation type; an id outside [0, V) gives a NaN row. With
 * `part`, the table holds rows [first, first + V) of a `total`-row vocabulary.
 */
export function embedQ4(rec: Recorder, table: Tensor, ids: Tensor, out: Tensor, part?: VocabPart): void {
  dispatchQuantEmbed(rec, kernel, 'q4', table, ids, out, part);
}

/** The dispatch of embed_q4 and embed_q8, which share their entry point (lib/embed_quant.wgsl). */
export function dispatchQuantEmbed(rec: Recorder, k: Kernel, dtype: 'q4' | 'q8', table: Tensor, ids: Tensor, out: Tensor, part?: VocabPart): void {
  const op = k.name;
  table.assertAlive(op);
  if (table.dtype !== dtype || !table.quant || table.shape.length !== 2) throw new Error(`${op}: table '${table.label}' ${fmtShape(table.shape)} ${table.dtype} must be a (V, D) ${dtype} matrix`);
  const [vocab, dim] = table.shape;
  const { groupSize, packedBytes, scalesOffset, scalesBytes } = table.quant;
  const tokens = expectIds(op, ids);
  const type = expectActivation(op, 'out', out);
  expectShape(op, 'out', out, [tokens, dim]);
  expectDistinct(op, ['out', out], ['table', table], ['ids', ids]);
  const { first, total } = expectPart(op, table, part);
  const params = new Params(7).u32(tokens).u32(dim).u32(vocab).u32(first).u32(total).u32(groupSize).f32(NaN).buffer;
  const codes = { tensor: table, offset: 0, size: packedBytes };
  const scales = { tensor: table, offset: scalesOffset, size: scalesBytes };
  const groups = Math.ceil((tokens * dim) / (dtype === 'q4' ? 8 : 4) / WG); // one invocation per code word
  k.dispatch(rec, { type, overrides: { WG } }, [codes, scales, ids, out], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
