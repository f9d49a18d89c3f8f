import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './moe_matmul_q4.wgsl?raw';
import rowsSource from './moe_matmul_q4_rows.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectQuantWeight, vec4CodesBinding } from './checks';
import type { MoeRoute } from './moe_group';
import { prefillMatmul, type PrefillMatmul } from './tunings';

const tiledKernel = defineKernel({ name: 'moe_matmul_q4', source, libs: [lib.matmulTile] });
const rowsKernel = defineKernel({ name: 'moe_matmul_q4_rows', source: rowsSource, libs: [lib.q4Rows] });
const TN = 64; // output rows per workgroup (both kernels); their TM is moe_group.ts MOE_TILE

/**
 * The experts of T tokens (prefill), grouped by expert: for each (token, slot)
 * entry i = t * k + j, y[i] = W[ids[i]] x[row], reading each expert's weights
 * once per tile of its own entries (route: moeGroup's, for ids (T, k)).
 * w: the E experts stacked as one q4 weight (E * N, K); x: (T, K), the
 * tokens' inputs (gate, up: row t for every slot of token t), or (T * k, K),
 * one row per entry (down: the entries' activations, in (token, slot) order);
 * y: (T * k, N) of x's dtype, in (token, slot) order. An entry with an id >= E
 * is not written (moe_combine makes its token NaN). `kernel`: the tiled
 * kernel (moe_matmul_q4.wgsl) or the barrier-free one
 * (moe_matmul_q4_rows.wgsl); tunings.ts chooses per adapter, as for matmulQ4.
 */
export function moeMatmulQ4(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, route: MoeRoute, kernel: PrefillMatmul = prefillMatmul(rec.gpu.report)): void {
  const op = 'moe_matmul_q4';
  const [rows, K] = expectQuantWeight(op, 'w', w, 'q4');
  const type = expectActivation(op, 'x', x);
  const { tokens: T, k, experts: E, layout, plan } = route;
  plan.assertAlive(op);
  route.ids.assertAlive(op);
  const entries = T * k;
  if (x.shape.length !== 2 || x.shape[1] !== K || (x.shape[0] !== T && x.shape[0] !== entries)) {
    throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (${T}, ${K}) (one row per token) or (${entries}, ${K}) (one per token and slot) for w '${w.label}' ${fmtShape(w.shape)} and T ${T}, k ${k}`);
  }
  y.assertAlive(op);
  if (y.dtype !== type || y.shape.length !== 2 || y.shape[0] !== entries) throw new Error(`${op}: y '${y.label}' ${fmtShape(y.shape)} ${y.dtype} must be (T * k, N) = (${entries}, N) ${type}`);
  const N = y.shape[1];
  if (rows !== E * N) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} is not E = ${E} experts of N = ${N} rows (y '${y.label}' ${fmtShape(y.shape)}): expected (${E * N}, ${K})`);
  for (const [name, t] of [['x', x], ['plan', plan]] as const) {
    if (y.buffer === t.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with ${name} '${t.label}'; an input bound read and an output bound read_write cannot alias`);
  }
  const maxPerDim = rec.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (layout.maxTiles > maxPerDim) throw new Error(`${op}: ${layout.maxTiles} tiles for T ${T}, k ${k} exceed ${maxPerDim} workgroups per dimension; prefill fewer tokens at once`);
  const q = w.quant!;
  const kw = K / 8;
  // x (T * k, K) with k = 1 is (T, K): gathering by token or by entry is the same row.
  const gather = x.shape[0] === T ? 1 : 0;
  if (kernel === 'rows') {
    const rowsParams = new Params(12).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q.groupSize)).u32(N).u32(k).u32(gather).u32(E)
      .u32(layout.perm).u32(layout.offsets).u32(layout.tiles).buffer;
    const rowsBindings = [x, vec4CodesBinding(op, w), { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, plan, y];
    rowsKernel.dispatch(rec, { type, overrides: { G: q.groupSize } }, rowsBindings, rowsParams, [Math.ceil(N / TN), layout.maxTiles]);
    return;
  }
  const params = new Params(11).u32(entries).u32(N).u32(kw).u32(Math.ceil(K / q.groupSize)).u32(N).u32(k).u32(gather).u32(E)
    .u32(layout.perm).u32(layout.offsets).u32(layout.tiles).buffer;
  const bindings = [x, { tensor: w, offset: 0, size: q.packedBytes }, { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, plan, y];
  tiledKernel.dispatch(rec, { type, overrides: { G: q.groupSize } }, bindings, params, [Math.ceil(N / TN), layout.maxTiles]);
}
