import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './embed.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectIds, expectPart, expectShape, type VocabPart } from './checks';

const kernel = defineKernel({ name: 'embed', source, libs: [lib.common] });
const WG = 256;

/**
 * out[t] = table[ids[t]]: table (V, D) f32, ids (T) i32 or u32, out (T, D)
 * activation type; an id outside [0, V) gives a NaN row. With `part`, the
 * table holds rows [first, first + V) of a `total`-row vocabulary (see VocabPart).
 */
export function embed(rec: Recorder, table: Tensor, ids: Tensor, out: Tensor, part?: VocabPart): void {
  const op = 'embed';
  table.assertAlive(op);
  if (table.dtype !== 'f32' || table.shape.length !== 2) throw new Error(`${op}: table '${table.label}' ${fmtShape(table.shape)} ${table.dtype} must be a (V, D) f32 matrix`);
  const [vocab, dim] = table.shape;
  const tokens = expectIds(op, ids);
  const type = expectActivation(op, 'out', out);
  expectShape(op, 'out', out, [tokens, dim]);
  expectDistinct(op, ['out', out], ['table', table], ['ids', ids]);
  const { first, total } = expectPart(op, table, part);
  const params = new Params(6).u32(tokens).u32(dim).u32(vocab).u32(first).u32(total).f32(NaN).buffer;
  const groups = Math.ceil((tokens * dim) / WG);
  kernel.dispatch(rec, { type, overrides: { WG } }, [table, ids, out], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
