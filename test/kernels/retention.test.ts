import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { roundF16 } from '../../src/runtime/f16';
import { RETENTION_MAX_DK, retentionRecurrent, type RetentionArgs } from '../../src/kernels/retention_recurrent';
import { retentionParallel } from '../../src/kernels/retention_parallel';
import { RETENTION_CHUNK, retentionChunkwise, retentionChunkwiseScratchShape } from '../../src/kernels/retention_chunkwise';
import { retentionParallelRef, retentionRecurrentRef, type RetentionRefArgs } from '../../src/reference/retention';
import { cappedGrid, describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// Tolerances. Every form sums in f32 what the reference sums in float64: an
// output is a sum of up to T (or ~1 / (1 - gamma)) decayed terms of either sign,
// so one near 0 still carries the rounding of terms the size of a typical one:
// atol is relative to the RMS of the reference (of o, or of S), rtol to the element.
// The brief's bound is a relative error of 1e-4. Measured on SwiftShader: at most
// 6e-6 × RMS for every shape up to 3 chunks (worst element at 0.17 of the limit),
// 1.2e-5 × RMS for o at T = 2048 (0.46 of the limit): the chunkwise carry applies
// one f32 gamma^chunk per chunk, so its few-ulp error adds up over the 32 chunks.
// Powers of gamma come from exp2(e log2 gamma), log2 gamma to about an ulp
// (lib/precise_log2.wgsl; WGSL's log2 is only 2^-21 absolute near 1, 1e-3 relative
// at gamma = 1 - 2^-12): gamma^e is then good to ~|ln gamma^e| ulp, a GPU's exp2 to
// 3 + 2|x| ulp (WGSL), both far inside the margin.
const TOL = { atol: 1e-5, rtol: 1e-4 };        // × RMS of the reference for atol
// 16384 tokens: the recurrent form rounds S = gamma S + k_tᵀ v_t in f32 once a
// token, and those roundings add up like a random walk over the ~1 / (1 - gamma)
// tokens S remembers (16384 at 1 - 2^-14): sqrt(16384) 2^-24 ~ 8e-6 of |S| for a
// typical element, a few times that at the worst of the 16384 H Dv outputs. So
// atol is the brief's relative 1e-4, of the RMS. Measured on SwiftShader (H 3,
// Dk 8, Dv 8): o within 3.1e-5 × RMS of the reference (recurrent; chunkwise
// 1.5e-5; the two forms 3.0e-5 apart), S within 1.2e-5 (recurrent; chunkwise
// 5.5e-6; 1.5e-5 apart): the worst element at 0.23 of the limit.
const TOL_LONG = { atol: 1e-4, rtol: 1e-4 };  // × RMS of the reference for atol
// f16 activations: the reference runs on the inputs as f16 holds them; the
// outputs are rounded once to f16 (relative 2^-11); the state stays f32. Tried in
// Firefox on lavapipe (which has shader-f16): o within 4e-4 × (RMS + |o|), S as in f32.
const TOL_F16 = { atol: 1e-3, rtol: 1e-3 };

const C = RETENTION_CHUNK;
/** fla's decays, gamma_h = 1 - 2^(-5-h), and the extremes: close to 1 (1 - 2^-12) and 0.5. */
const FLA = (H: number) => Array.from({ length: H }, (_, h) => 1 - 2 ** (-5 - h));
const NEAR_ONE = 1 - 2 ** -12;

type Form = 'recurrent' | 'parallel' | 'chunkwise';
const FORMS: Form[] = ['recurrent', 'parallel', 'chunkwise'];

interface Case { T: number; H: number; Dk: number; Dv: number; decay: number[]; seed: number }
interface Host { q: Float32Array; k: Float32Array; v: Float32Array; decay: Float32Array; state: Float32Array; scale: number }

/** Seeded inputs: q, k, v ~ N(0, 1), a non-zero carried state, scale Dk^-0.5 (the model's). */
function inputs(c: Case): Host {
  const { T, H, Dk, Dv, seed } = c;
  return {
    q: randn(seed, T * H * Dk),
    k: randn(seed + 1, T * H * Dk),
    v: randn(seed + 2, T * H * Dv),
    decay: Float32Array.from(c.decay),
    state: randn(seed + 3, H * Dk * Dv, 0.5),
    scale: 1 / Math.sqrt(Dk),
  };
}

const refArgs = (c: Case, h: Host): RetentionRefArgs => ({ ...h, T: c.T, H: c.H, Dk: c.Dk, Dv: c.Dv });

const rms = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((a, b) => a + b * b, 0) / x.length);

/** got vs want within TOL (atol × RMS of want), o and state. */
function expectMatch(got: { o: ArrayLike<number>; state: ArrayLike<number> }, want: { o: ArrayLike<number>; state: ArrayLike<number> }, what: string, tol = TOL): void {
  expectClose(got.o, want.o, { atol: tol.atol * rms(want.o), rtol: tol.rtol }, `${what} o`);
  expectClose(got.state, want.state, { atol: tol.atol * rms(want.state), rtol: tol.rtol }, `${what} state`);
}

interface RunOpts { dtype?: 'f32' | 'f16'; chunk?: number; scratchT?: number }

/**
 * Runs `forms[i]` over consecutive parts of the tokens of lengths `lens` (one
 * form for every part when a single one is given), each part its own submit,
 * the state carried on the GPU. out and the scratch are poisoned with NaN
 * before each part.
 */
async function run(g: Gpu, c: Case, h: Host, lens: number[], forms: Form | Form[], opts: RunOpts = {}): Promise<{ o: Float32Array; state: Float32Array }> {
  const { H, Dk, Dv } = c;
  const dtype = opts.dtype ?? 'f32';
  const chunk = opts.chunk ?? C;
  const decay = g.upload(h.decay, [H], { label: 'decay', category: 'weights' });
  const state = g.upload(h.state, [H, Dk, Dv], { label: 'state', category: 'cache' });
  const scratchShape = retentionChunkwiseScratchShape(Math.max(opts.scratchT ?? 0, ...lens), H, Dk, Dv, chunk);
  const scratch = poisoned(g, scratchShape, 'scratch', 'f32', 'scratch');
  const o = new Float32Array(lens.reduce((a, b) => a + b, 0) * H * Dv);
  const made: Tensor[] = [];
  try {
    let t0 = 0;
    for (const [i, T] of lens.entries()) {
      const rows = (x: Float32Array, w: number) => x.subarray(t0 * H * w, (t0 + T) * H * w);
      const up = (x: Float32Array, w: number, label: string) => g.upload(rows(x, w), [T, H, w], { label, dtype });
      const a: RetentionArgs = { q: up(h.q, Dk, 'q'), k: up(h.k, Dk, 'k'), v: up(h.v, Dv, 'v'), decay, state, out: poisoned(g, [T, H, Dv], 'out', dtype), scale: h.scale };
      made.push(a.q, a.k, a.v, a.out);
      const form = Array.isArray(forms) ? forms[i] : forms;
      const rec = new Recorder(g);
      if (form === 'recurrent') retentionRecurrent(rec, a);
      else if (form === 'parallel') retentionParallel(rec, a);
      else {
        g.write(scratch, new Float32Array(scratch.numel).fill(NaN));
        retentionChunkwise(rec, { ...a, scratch, chunk });
      }
      o.set((await rec.submitAndRead(a.out)) as Float32Array, t0 * H * Dv);
      t0 += T;
    }
    return { o, state: (await new Recorder(g).submitAndRead(state)) as Float32Array };
  } finally {
    [...made, decay, state, scratch].forEach((t) => t.dispose());
  }
}

describe('retention references', () => {
  it('match a hand-checked two-token example', () => {
    // H 1, Dk 1, Dv 1: S = g S + k v, o = s q S
    const g = 0.5, s = 2;
    const r = retentionRecurrentRef({ q: [1, 3], k: [2, 5], v: [7, 11], decay: [g], state: [4], scale: s, T: 2, H: 1, Dk: 1, Dv: 1 });
    const S1 = g * 4 + 2 * 7;
    const S2 = g * S1 + 5 * 11;
    expect(Array.from(r.o)).toEqual([s * 1 * S1, s * 3 * S2]);
    expect(Array.from(r.state)).toEqual([S2]);
    const p = retentionParallelRef({ q: [1, 3], k: [2, 5], v: [7, 11], decay: [g], state: [4], scale: s, T: 2, H: 1, Dk: 1, Dv: 1 });
    expect(Array.from(p.o)).toEqual(Array.from(r.o));
    expect(Array.from(p.state)).toEqual(Array.from(r.state));
  });

  it.each([
    [1, 2, 4, 8], [9, 3, 4, 8], [40, 2, 8, 12],
  ])('recurrent == parallel at T %i, H %i, Dk %i, Dv %i, decays near 1, fla and 0.5, from a non-zero state', (T, H, Dk, Dv) => {
    const c: Case = { T, H, Dk, Dv, decay: [NEAR_ONE, 0.5, 1 - 2 ** -5].slice(0, H), seed: T * 31 + H };
    const h = inputs(c);
    const a = retentionRecurrentRef(refArgs(c, h));
    const b = retentionParallelRef(refArgs(c, h));
    expectMatch(a, b, 'recurrent vs parallel reference', { atol: 1e-12, rtol: 1e-12 });
  });

  it('chains: T1 then T2 tokens from the carried state equals T1 + T2', () => {
    const c: Case = { T: 11, H: 2, Dk: 4, Dv: 8, decay: [0.9, 0.5], seed: 3 };
    const h = inputs(c);
    const whole = retentionParallelRef(refArgs(c, h));
    const part = (x: Float32Array, w: number, t0: number, t1: number) => x.subarray(t0 * 2 * w, t1 * 2 * w);
    const p1 = retentionParallelRef({ ...refArgs(c, h), q: part(h.q, 4, 0, 4), k: part(h.k, 4, 0, 4), v: part(h.v, 8, 0, 4), T: 4 });
    const p2 = retentionParallelRef({ ...refArgs(c, h), q: part(h.q, 4, 4, 11), k: part(h.k, 4, 4, 11), v: part(h.v, 8, 4, 11), state: p1.state, T: 7 });
    expectMatch({ o: [...p1.o, ...p2.o], state: p2.state }, whole, 'parts vs whole reference', { atol: 1e-12, rtol: 1e-12 });
  });
});

describeGpu('retention', () => {
  const gpu = useGpu();

  it.each<[string, Omit<Case, 'seed'>]>([
    ['one token', { T: 1, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5] }],
    ['7 tokens, Dk 8, Dv 12', { T: 7, H: 3, Dk: 8, Dv: 12, decay: FLA(3) }],
    ['chunk - 1', { T: C - 1, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5] }],
    ['chunk', { T: C, H: 2, Dk: 16, Dv: 32, decay: FLA(2) }],
    ['chunk + 1', { T: C + 1, H: 2, Dk: 16, Dv: 32, decay: [0.5, NEAR_ONE] }],
    ['3 chunks + 5, H 3', { T: 3 * C + 5, H: 3, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5, 1 - 2 ** -5] }],
    // Dk over one 32-wide tile (two Dk passes), Dv over NV_MAX column blocks (two workgroups); recurrent R = 4, RPT = 9
    ['Dk 36, Dv 132', { T: 45, H: 1, Dk: 36, Dv: 132, decay: [0.97] }],
    // a real model's heads: recurrent R 8 / 16 row lanes of 16 rows; parallel 4 / 8 Dk passes
    ['Dk 128, Dv 256', { T: 5, H: 2, Dk: 128, Dv: 256, decay: FLA(2) }],
    ['Dk 256, Dv 512', { T: 3, H: 1, Dk: 256, Dv: 512, decay: [NEAR_ONE] }],
  ])('%s: all three forms match the float64 reference and each other', async (_name, cc) => {
    const c: Case = { ...cc, seed: cc.T * 7919 + cc.Dk * 31 + cc.Dv };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    const got: Record<string, { o: Float32Array; state: Float32Array }> = {};
    for (const form of FORMS) {
      got[form] = await run(gpu(), c, h, [c.T], form);
      expectMatch(got[form], want, `retention_${form} T ${c.T} H ${c.H} Dk ${c.Dk} Dv ${c.Dv}`);
    }
    expectMatch(got.parallel, got.recurrent, 'parallel vs recurrent');
    expectMatch(got.chunkwise, got.recurrent, 'chunkwise vs recurrent');
  });

  it('chunkwise with chunks of 32 and 128 (the chunk is a per-call size) matches the reference', async () => {
    const c: Case = { T: 2 * 128 + 33, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5], seed: 128 };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    for (const chunk of [32, 128]) expectMatch(await run(gpu(), c, h, [c.T], 'chunkwise', { chunk }), want, `retention_chunkwise chunk ${chunk}`);
  });

  it('stays finite and within tolerance over 2048 tokens (chunkwise vs the recurrent float64 reference)', async () => {
    const c: Case = { T: 2048, H: 3, Dk: 16, Dv: 32, decay: [NEAR_ONE, 1 - 2 ** -5, 0.5], seed: 2048 };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    const got = await run(gpu(), c, h, [c.T], 'chunkwise');
    expect(got.o.every(Number.isFinite) && got.state.every(Number.isFinite)).toBe(true);
    expectMatch(got, want, 'retention_chunkwise 2048 tokens');
  });

  it('16384 tokens in one recurrent call stay finite and match the chunkwise form and the float64 reference (outputs and final state)', async () => {
    // fla's first and last decays of 8 heads (1 - 2^-5, 1 - 2^-12) and one that forgets
    // slower still (1 - 2^-14: gamma^16384 = e^-1, so S0 and the first tokens still
    // count at the end). The recurrent kernel walks all 16384 tokens inside one dispatch.
    const c: Case = { T: 16384, H: 3, Dk: 8, Dv: 8, decay: [1 - 2 ** -5, NEAR_ONE, 1 - 2 ** -14], seed: 16384 * 7 };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    const recurrent = await run(gpu(), c, h, [c.T], 'recurrent');
    const chunkwise = await run(gpu(), c, h, [c.T], 'chunkwise');
    for (const r of [recurrent, chunkwise]) expect(r.o.every(Number.isFinite) && r.state.every(Number.isFinite)).toBe(true);
    expectMatch(recurrent, want, 'retention_recurrent 16384 tokens', TOL_LONG);
    expectMatch(chunkwise, want, 'retention_chunkwise 16384 tokens', TOL_LONG);
    expectMatch(recurrent, chunkwise, 'recurrent vs chunkwise, 16384 tokens', TOL_LONG);
  });

  it('carries the state: a prefill in parts equals one call, in every form', async () => {
    const c: Case = { T: 3 * C + 6, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5], seed: 31337 };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    const whole = await run(gpu(), c, h, [c.T], 'chunkwise');
    const lens = [C + 37, 1, C - 5, c.T - 2 * C - 33];  // boundaries inside chunks and tiles
    for (const form of FORMS) {
      const parts = await run(gpu(), c, h, lens, form, { scratchT: 4 * C });
      expectMatch(parts, want, `retention_${form} in parts vs reference`);
      expectMatch(parts, whole, `retention_${form} in parts vs one chunkwise call`);
    }
  });

  it('a prefill then decode steps equals one prefill of all the tokens', async () => {
    const c: Case = { T: 2 * C + 20, H: 2, Dk: 16, Dv: 32, decay: FLA(2), seed: 4242 };
    const h = inputs(c);
    const N = 12;
    const want = retentionRecurrentRef(refArgs(c, h));
    const decodeSteps = Array<Form>(N).fill('recurrent');
    const chunked = await run(gpu(), c, h, [c.T - N, ...Array(N).fill(1)], ['chunkwise', ...decodeSteps]);
    const parallel = await run(gpu(), c, h, [c.T - N, ...Array(N).fill(1)], ['parallel', ...decodeSteps]);
    const one = await run(gpu(), c, h, [c.T], 'parallel');
    for (const [name, r] of [['chunkwise + steps', chunked], ['parallel + steps', parallel]] as const) {
      expectMatch(r, want, `${name} vs reference`);
      expectMatch(r, one, `${name} vs one parallel prefill`);
    }
  });

  it('runs with f16 activations where the adapter has shader-f16 (decay, state, scratch stay f32), and says so where it has not', async () => {
    const g = gpu();
    const c: Case = { T: C + 9, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5], seed: 1616 };
    const h = inputs(c);
    if (!g.report.features.shaderF16) {
      for (const form of FORMS) {
        await expect(run(g, c, h, [c.T], form, { dtype: 'f16' })).rejects.toThrow(new RegExp(`retention_${form}: f16 needs the shader-f16 feature`));
      }
      return;
    }
    const r = (x: Float32Array) => Float32Array.from(x, roundF16);
    const want = retentionRecurrentRef(refArgs(c, { ...h, q: r(h.q), k: r(h.k), v: r(h.v) }));
    for (const form of FORMS) expectMatch(await run(g, c, h, [c.T], form, { dtype: 'f16' }), want, `retention_${form} f16`, TOL_F16);
  });

  it('splits a large grid over x and y (as past 65535 workgroups): the spare workgroups write nothing', async () => {
    // At most 4 workgroups per dimension: every dispatch of every form here (5 to 10 workgroups) splits, and has spares.
    const g = cappedGrid(gpu(), 4);
    const c: Case = { T: 40, H: 5, Dk: 16, Dv: 32, decay: [NEAR_ONE, ...FLA(3), 0.5], seed: 65535 };
    const h = inputs(c);
    const want = retentionRecurrentRef(refArgs(c, h));
    for (const form of FORMS) expectMatch(await run(g, c, h, [c.T], form), want, `retention_${form} (split grid)`);
  });

  it("under WebGPU's default limits (16 KiB workgroup memory, 8 storage buffers): same results", async () => {
    const g = await Gpu.create({ limits: 'default' });
    try {
      const c: Case = { T: C + 3, H: 2, Dk: 36, Dv: 132, decay: [NEAR_ONE, 0.5], seed: 16384 };
      const h = inputs(c);
      const want = retentionRecurrentRef(refArgs(c, h));
      for (const form of FORMS) expectMatch(await run(g, c, h, [c.T], form), want, `retention_${form} (default limits)`);
    } finally {
      g.destroy();
    }
  });

  it('rejects bad shapes and dtypes, Dk or Dv not a multiple of 4, aliased outputs, a bad scratch or chunk, naming them', () => {
    const g = gpu();
    const T = 3, H = 2, Dk = 4, Dv = 8;
    const extra: Tensor[] = [];
    const t = (x: Tensor) => (extra.push(x), x);
    const mk = (shape: number[], label: string) => t(g.upload(randn(label.length, shape.reduce((a, b) => a * b)), shape, { label }));
    const a: RetentionArgs = {
      q: mk([T, H, Dk], 'q'), k: mk([T, H, Dk], 'k'), v: mk([T, H, Dv], 'v'), decay: mk([H], 'decay'),
      state: mk([H, Dk, Dv], 'state'), out: t(g.empty([T, H, Dv], 'f32', 'out')), scale: 0.5,
    };
    const scratch = t(g.empty(retentionChunkwiseScratchShape(T, H, Dk, Dv), 'f32', 'scratch'));
    const rec = new Recorder(g);
    const call = { recurrent: retentionRecurrent, parallel: retentionParallel, chunkwise: (r: Recorder, x: RetentionArgs) => retentionChunkwise(r, { ...x, scratch }) };
    for (const form of FORMS) {
      const f = (x: RetentionArgs) => () => call[form](rec, x);
      const op = `retention_${form}`;
      expect(f({ ...a, k: mk([T, H, Dk + 4], 'k8') })).toThrow(new RegExp(`${op}: k 'k8' has shape \\(3, 2, 8\\), expected \\(3, 2, 4\\)`));
      expect(f({ ...a, v: mk([T + 1, H, Dv], 'v4') })).toThrow(new RegExp(`${op}: v 'v4' has shape \\(4, 2, 8\\), expected \\(T, H, Dv\\) = \\(3, 2, Dv\\)`));
      expect(f({ ...a, q: mk([T, H], 'q2') })).toThrow(new RegExp(`${op}: q 'q2' has shape \\(3, 2\\), expected \\(T, H, Dk\\)`));
      expect(f({ ...a, decay: mk([H + 1], 'd3') })).toThrow(new RegExp(`${op}: decay 'd3' has shape \\(3\\), expected \\(2\\)`));
      expect(f({ ...a, state: mk([H, Dv, Dk], 'sT') })).toThrow(new RegExp(`${op}: state 'sT' has shape \\(2, 8, 4\\), expected \\(2, 4, 8\\)`));
      expect(f({ ...a, out: t(g.empty([T, H, Dk], 'f32', 'o4')) })).toThrow(new RegExp(`${op}: out 'o4' has shape \\(3, 2, 4\\), expected \\(3, 2, 8\\)`));
      expect(f({ ...a, q: t(g.empty([T, H, Dk], 'i32', 'qi')) })).toThrow(new RegExp(`${op}: q 'qi' \\(3, 2, 4\\) must be f32 or f16, got i32`));
      expect(f({ ...a, decay: t(g.empty([H], 'u32', 'du')) })).toThrow(new RegExp(`${op}: decay 'du' \\(2\\) must be f32, got u32`));
      expect(f({ ...a, state: t(g.empty([H, Dk, Dv], 'f16', 'sh')) })).toThrow(new RegExp(`${op}: state 'sh' \\(2, 4, 8\\) must be f32, got f16`));
      expect(f({ ...a, q: mk([T, H, 6], 'q6'), k: mk([T, H, 6], 'k6') })).toThrow(new RegExp(`${op}: head dim Dk = 6 of q 'q6' \\(3, 2, 6\\) must be a positive multiple of 4`));
      expect(f({ ...a, v: mk([T, H, 10], 'v10'), out: t(g.empty([T, H, 10], 'f32', 'o10')) })).toThrow(new RegExp(`${op}: head dim Dv = 10 of v 'v10' \\(3, 2, 10\\) must be a positive multiple of 4`));
      expect(f({ ...a, scale: NaN })).toThrow(new RegExp(`${op}: scale must be a finite number, got NaN`));
      // aliasing: out or state sharing a buffer with anything else
      expect(f({ ...a, out: a.state.view([T, H, Dv], 0, 'ov') })).toThrow(new RegExp(`${op}: out 'ov' shares a buffer with state 'state'`));
      expect(f({ ...a, out: a.v })).toThrow(new RegExp(`${op}: out 'v' shares a buffer with v 'v'`));
      const pair = t(g.empty([128], 'f32', 'pair'));  // views 256 bytes apart, as the recorder needs
      expect(f({ ...a, q: pair.view([T, H, Dk], 0, 'qv'), state: pair.view([H, Dk, Dv], 64, 'sv') })).toThrow(new RegExp(`${op}: state 'sv' shares a buffer with q 'qv'`));
    }
    // the chunkwise form's scratch and chunk
    const chunkwise = (x: Partial<Parameters<typeof retentionChunkwise>[1]>) => () => retentionChunkwise(rec, { ...a, scratch, ...x });
    expect(chunkwise({ scratch: t(g.empty([1, H, Dk, Dv + 4], 'f32', 'sw')) })).toThrow(/retention_chunkwise: scratch 'sw' \(1, 2, 4, 12\) f32 must be f32 \(1, 2, 4, 8\) or more chunks for T = 3 in chunks of 64/);
    expect(chunkwise({ scratch: t(g.empty([1, H, Dk, Dv], 'f16', 'sh')) })).toThrow(/retention_chunkwise: scratch 'sh' \(1, 2, 4, 8\) f16 must be f32/);
    const TL = C + 1;
    const long = { q: mk([TL, H, Dk], 'qL'), k: mk([TL, H, Dk], 'kL'), v: mk([TL, H, Dv], 'vL'), out: t(g.empty([TL, H, Dv], 'f32', 'oL')) };
    expect(chunkwise({ ...long })).toThrow(/retention_chunkwise: scratch 'scratch' \(1, 2, 4, 8\) f32 must be f32 \(2, 2, 4, 8\) or more chunks for T = 65/);
    expect(chunkwise({ scratch: undefined })).toThrow(/retention_chunkwise: needs scratch: f32 \(1, 2, 4, 8\) or more chunks/);
    expect(chunkwise({ chunk: 48 })).toThrow(/retention_chunkwise: chunk must be a positive multiple of 32 .*, got 48/);
    const shared = t(g.empty([1024], 'f32', 'shared'));
    expect(chunkwise({ out: shared.view([T, H, Dv], 0, 'ov'), scratch: shared.view([1, H, Dk, Dv], 512, 'scv') })).toThrow(/retention_chunkwise: scratch 'scv' shares a buffer with out 'ov'/);
    // the recurrent form's register budget
    const big = RETENTION_MAX_DK + 4;
    expect(() => retentionRecurrent(rec, { ...a, q: mk([1, 1, big], 'qb'), k: mk([1, 1, big], 'kb'), v: mk([1, 1, 4], 'vb'), decay: mk([1], 'd1'), state: t(g.empty([1, big, 4], 'f32', 'sb')), out: t(g.empty([1, 1, 4], 'f32', 'ob')) }))
      .toThrow(new RegExp(`retention_recurrent: head dim Dk = ${big} of q 'qb' \\(1, 1, ${big}\\) exceeds the supported maximum of ${RETENTION_MAX_DK}`));
    // a disposed state
    a.state.dispose();
    for (const form of FORMS) expect(() => call[form](new Recorder(g), a)).toThrow(new RegExp(`retention_${form}: tensor 'state' \\(2, 4, 8\\) was disposed`));
    extra.forEach((x) => x.dispose());
  });
});
