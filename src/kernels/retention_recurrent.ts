import { defineKernel, grid, type ElementType } from './kernel';
import { lib } from './lib';
import source from './retention_recurrent.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'retention_recurrent', source, libs: [lib.common] });

/** Rows of S a thread of retention_recurrent keeps in registers (RPT_MAX in the shader). */
const ROWS_PER_THREAD = 16;
/** Threads a retention_recurrent workgroup aims for (R row lanes × CV column lanes). */
const WG = 64;
/** Largest Dk retention_recurrent takes: Dk / 16 row lanes, at most 256 threads per workgroup. */
export const RETENTION_MAX_DK = 1024;

/**
 * The tensors of one retention call (RetNet, Sun et al. 2023), the same for
 * its three forms: retentionRecurrent, retentionParallel, retentionChunkwise.
 * Per head h, with gamma = decay[h] and S0 the state before the call:
 *   out[t] = scale · Σ_{m<=t} gamma^(t-m) (q_t · k_m) v_m + scale · gamma^(t+1) q_t S0
 *   state <- gamma^T S0 + Σ_{m<T} gamma^(T-1-m) k_mᵀ v_m
 * q, k, v and out share one activation dtype (f32, or f16 with shader-f16);
 * decay and state are f32 (S is a running sum over the whole sequence).
 */
export interface RetentionArgs {
  /** (T, H, Dk) queries (after xPos/rotary, if any). */
  q: Tensor;
  /** (T, H, Dk) keys. */
  k: Tensor;
  /** (T, H, Dv) values. */
  v: Tensor;
  /** (H) f32, gamma per head, 0 < gamma < 1 (RetNet: 1 - 2^(-5-h)). */
  decay: Tensor;
  /** (H, Dk, Dv) f32: S before the first token (zeros at a sequence start), replaced by S after the last. */
  state: Tensor;
  /** (T, H, Dv) the output, written. */
  out: Tensor;
  /** The score scale (RetNet: Dk^-0.5); any finite number. */
  scale: number;
}

/** Sizes and dtype of checked retention arguments. */
export interface RetentionSizes { T: number; H: number; Dk: number; Dv: number; type: ElementType }

/**
 * Checks every tensor of a retention call (shapes, dtypes, liveness, aliasing,
 * Dk and Dv multiples of 4, the scale, f16 support), naming the op; returns the sizes.
 */
export function expectRetentionArgs(op: string, rec: Recorder, a: RetentionArgs): RetentionSizes {
  const type = expectActivation(op, 'q', a.q);
  if (a.q.shape.length !== 3) throw new Error(`${op}: q '${a.q.label}' has shape ${fmtShape(a.q.shape)}, expected (T, H, Dk)`);
  const [T, H, Dk] = a.q.shape;
  a.v.assertAlive(op);
  if (a.v.shape.length !== 3 || a.v.shape[0] !== T || a.v.shape[1] !== H) {
    throw new Error(`${op}: v '${a.v.label}' has shape ${fmtShape(a.v.shape)}, expected (T, H, Dv) = (${T}, ${H}, Dv) for q ${fmtShape(a.q.shape)}`);
  }
  const Dv = a.v.shape[2];
  for (const [name, d] of [['Dk', Dk], ['Dv', Dv]] as const) {
    if (!(d > 0 && d % 4 === 0)) {
      const t = name === 'Dk' ? a.q : a.v;
      throw new Error(`${op}: head dim ${name} = ${d} of ${name === 'Dk' ? 'q' : 'v'} '${t.label}' ${fmtShape(t.shape)} must be a positive multiple of 4`);
    }
  }
  if (T < 1) throw new Error(`${op}: q '${a.q.label}' ${fmtShape(a.q.shape)} has no tokens`);
  expectShape(op, 'k', a.k, [T, H, Dk], type);
  expectShape(op, 'v', a.v, [T, H, Dv], type);
  expectShape(op, 'decay', a.decay, [H], 'f32');
  expectShape(op, 'state', a.state, [H, Dk, Dv], 'f32');
  expectShape(op, 'out', a.out, [T, H, Dv], type);
  if (!Number.isFinite(a.scale)) throw new Error(`${op}: scale must be a finite number, got ${a.scale}`);
  const inputs: [string, Tensor][] = [['q', a.q], ['k', a.k], ['v', a.v], ['decay', a.decay]];
  expectDistinct(op, ['out', a.out], ...inputs, ['state', a.state]);
  expectDistinct(op, ['state', a.state], ...inputs);
  // Said here, under this op's name, before a pass of a multi-pass form would say it under its own.
  if (type === 'f16' && !rec.gpu.report.features.shaderF16) throw new Error(`${op}: f16 needs the shader-f16 feature, which this adapter lacks`);
  return { T, H, Dk, Dv, type };
}

/** Smallest power of two >= n. */
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Retention in its recurrent form, one dispatch: the tokens in order, the state
 * updated in place and held in registers for the whole call (decode: T = 1).
 * Work is T × H × Dk × Dv with H × Dv / 4 column lanes in parallel, each
 * split over up to Dk / 16 row lanes; Dk <= RETENTION_MAX_DK. See RetentionArgs.
 */
export function retentionRecurrent(rec: Recorder, args: RetentionArgs): void {
  const op = 'retention_recurrent';
  const s = expectRetentionArgs(op, rec, args);
  if (s.Dk > RETENTION_MAX_DK) throw new Error(`${op}: head dim Dk = ${s.Dk} of q '${args.q.label}' ${fmtShape(args.q.shape)} exceeds the supported maximum of ${RETENTION_MAX_DK}`);
  // R row lanes keep <= 16 rows each; the column lanes fill the workgroup to WG threads, no wider than Dv needs.
  const R = pow2(Math.ceil(s.Dk / ROWS_PER_THREAD));
  const CV = Math.max(1, Math.min(WG / R, pow2(s.Dv / 4)));
  const RPT = Math.ceil(s.Dk / R);
  const groups = s.H * Math.ceil(s.Dv / 4 / CV);
  const params = new Params(5).u32(s.T).u32(s.H).u32(s.Dk).u32(s.Dv).f32(args.scale).buffer;
  const { q, k, v, decay, state, out } = args;
  kernel.dispatch(rec, { type: s.type, overrides: { R, CV, RPT } }, [q, k, v, decay, state, out], params, grid(groups, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
