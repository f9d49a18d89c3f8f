import { defineKernel } from './kernel';
import source from './moe_group.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { MOE_MAX_EXPERTS } from './moe_router';

const kernel = defineKernel({ name: 'moe_group', source });

/** Rows of gathered entries per tile of moe_matmul_q4 (its TM): each tile holds one expert's rows only. */
export const MOE_TILE = 32;

/** Where the parts of a plan (moe_group.wgsl) sit, in u32 elements, for T tokens, k slots and E experts. */
export interface MoePlanLayout {
  /** N = T * k (token, slot) entries. */
  entries: number;
  /** Tiles the grouped matmul's grid holds: the most E segments of N entries can need. */
  maxTiles: number;
  perm: number;
  offsets: number;
  tiles: number;
  /** u32 elements the plan needs. */
  size: number;
}

/**
 * The layout of a plan. maxTiles = floor((N + min(E, N) (TILE - 1)) / TILE):
 * the sum over experts of ceil(count / TILE) is at most that (each non-empty
 * expert wastes at most TILE - 1 rows of its last tile).
 */
export function moePlanLayout(T: number, k: number, E: number): MoePlanLayout {
  const N = T * k;
  const maxTiles = Math.floor((N + Math.min(E, N) * (MOE_TILE - 1)) / MOE_TILE);
  return { entries: N, maxTiles, perm: 0, offsets: N, tiles: N + E + 1, size: N + E + 1 + 2 * maxTiles };
}

/** The shape of a plan for up to T tokens: allocate it once (workspace, u32); smaller T fit in it. */
export function moePlanShape(T: number, k: number, E: number): [number] {
  return [moePlanLayout(T, k, E).size];
}

/** What moeGroup made: the plan on the GPU and the sizes it was made for; moe_matmul_q4 takes it. */
export interface MoeRoute {
  plan: Tensor;
  ids: Tensor;
  tokens: number;
  k: number;
  experts: number;
  layout: MoePlanLayout;
}

/**
 * Groups the (token, slot) entries of ids (T, k) u32 (moe_router's output) by
 * expert, on the GPU, into plan (>= moePlanShape(T, k, E)) u32, scratch the
 * caller owns: see moe_group.wgsl for its contents. One dispatch, one
 * workgroup. Returns the route moeMatmulQ4 runs over; it holds only until
 * plan or ids are written again.
 */
export function moeGroup(rec: Recorder, ids: Tensor, experts: number, plan: Tensor): MoeRoute {
  const op = 'moe_group';
  ids.assertAlive(op);
  plan.assertAlive(op);
  if (ids.dtype !== 'u32' || ids.shape.length !== 2) throw new Error(`${op}: ids '${ids.label}' ${fmtShape(ids.shape)} ${ids.dtype} must be (T, k) u32`);
  if (!(Number.isInteger(experts) && experts >= 1 && experts <= MOE_MAX_EXPERTS)) throw new Error(`${op}: experts = ${experts} must be an integer in 1 .. ${MOE_MAX_EXPERTS}`);
  const [T, k] = ids.shape;
  if (k > experts) throw new Error(`${op}: k = ${k} (ids '${ids.label}' ${fmtShape(ids.shape)}) exceeds the E = ${experts} experts`);
  const layout = moePlanLayout(T, k, experts);
  if (plan.dtype !== 'u32' || plan.numel < layout.size) {
    throw new Error(`${op}: plan '${plan.label}' ${fmtShape(plan.shape)} ${plan.dtype} must be u32 with at least ${layout.size} elements for T ${T}, k ${k}, E ${experts} (moePlanShape)`);
  }
  if (plan.buffer === ids.buffer) throw new Error(`${op}: plan '${plan.label}' shares a buffer with ids '${ids.label}'`);
  const params = new Params(7).u32(layout.entries).u32(experts).u32(MOE_TILE).u32(layout.maxTiles).u32(layout.perm).u32(layout.offsets).u32(layout.tiles).buffer;
  kernel.dispatch(rec, {}, [ids, plan], params, [1]);
  return { plan, ids, tokens: T, k, experts, layout };
}
