import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { SCAN_CHUNK, selectiveScan, selectiveScanScratchShape } from '../../src/kernels/selective_scan';
import { SSM_MAX_STATE, type SsmArgs } from '../../src/kernels/ssm_step';
import { selectiveScanRef, softplus } from '../../src/reference/mamba_ops';
import { describeGpu, SKIP_GPU, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { roundActivationsF16, runScan as runParts, scanInputs as inputs, scanReference as reference } from '../helpers/mamba_scan';

// Tolerances. y is a sum over N of C[t, n] * h[n], each h an f32 recurrence with
// decays exp(dt A) < 1: a step's rounding error is damped by the later decays, so
// the error stays bounded instead of growing with T. Measured on SwiftShader
// (these inputs, |y| up to ~30): at most 2.5e-6 absolute at T = 197 and 7.8e-6 at
// T = 4096, the state within 4e-7; relative to the largest |y| about 3e-7 at any T.
// A GPU's exp2/log are only promised to a few ulps (WGSL: 3 + 2|x| ulp): margin ~3x
// on the worst element, more elsewhere.
const TOL = { atol: 2e-5, rtol: 1e-4 };
// Two GPU runs that split the work differently (chunk boundaries): the same bound twice.
const TOL_SPLIT = { atol: 4e-5, rtol: 2e-4 };

const C = SCAN_CHUNK;

describe('selectiveScanRef', () => {
  it('matches a hand-checked step, and softplus follows torch (threshold 20)', () => {
    // one token, one channel, one state: dt = softplus(0) = ln 2
    const dt = Math.LN2;
    const r = selectiveScanRef({ u: [2], delta: [0], A: [-1], B: [3], C: [5], D: [7], z: [40], state: [0.5], T: 1, Di: 1, N: 1 });
    const h = Math.exp(-dt) * 0.5 + dt * 3 * 2;
    expect(r.state[0]).toBeCloseTo(h, 12);
    expect(r.y[0]).toBeCloseTo((5 * h + 7 * 2) * 40 / (1 + Math.exp(-40)), 10);
    expect(softplus(25)).toBe(25);
    expect(softplus(-30)).toBeCloseTo(Math.exp(-30), 20);
  });

  it('is its own chain: T1 then T2 tokens from the carried state equals T1 + T2', () => {
    const c = { T: 9, Di: 3, N: 4, seed: 5 };
    const h = inputs(c);
    const whole = reference(c, h);
    const part = (x: Float32Array, w: number, a: number, b: number) => x.subarray(a * w, b * w);
    const p1 = selectiveScanRef({ ...h, u: part(h.u, 3, 0, 4), delta: part(h.delta, 3, 0, 4), B: part(h.B, 4, 0, 4), C: part(h.C, 4, 0, 4), z: part(h.z, 3, 0, 4), T: 4, Di: 3, N: 4 });
    const p2 = selectiveScanRef({ ...h, u: part(h.u, 3, 4, 9), delta: part(h.delta, 3, 4, 9), B: part(h.B, 4, 4, 9), C: part(h.C, 4, 4, 9), z: part(h.z, 3, 4, 9), state: p1.state, T: 5, Di: 3, N: 4 });
    expect(Array.from(p2.state)).toEqual(Array.from(whole.state));
    expect([...p1.y, ...p2.y]).toEqual(Array.from(whole.y));
  });
});

describeGpu('selective_scan', () => {
  const gpu = useGpu();

  it.each([
    // T around the chunk (so the chunked path's edges), Di across a workgroup boundary (64)
    [1, 24, 16], [7, 70, 16], [5, 6, SSM_MAX_STATE], [C - 1, 24, 16], [C, 24, 16], [C + 1, 70, 16], [3 * C + 5, 24, 16],
    [2 * C + 3, 5, 1], [C + 9, 6, SSM_MAX_STATE], [3 * C + 5, 3, 7],
    // the carry pass takes U = 8 chunks per iteration: 10 chunks (the last of 1 token), 18 chunks (two
    // full iterations, a remainder of 2, the last chunk partial and no multiple of TB), exactly U chunks
    [9 * C + 1, 5, 16], [17 * C + 37, 3, 4], [8 * C, 2, 8],
    // T a multiple of the chunk with Di exactly one workgroup (no idle lanes); Di over two workgroup
    // boundaries with N odd (TB × N no multiple of WG); the largest N with Di across a workgroup boundary
    [2 * C, 64, 16], [C + 17, 130, 33], [C + 3, 65, SSM_MAX_STATE],
  ])('T %i × Di %i, N %i matches the serial float64 reference, final state included', async (T, Di, N) => {
    const c = { T, Di, N, seed: T * 7919 + Di * 31 + N };
    const h = inputs(c);
    const want = reference(c, h);
    const got = await runParts(gpu(), c, h, [T]);
    expectClose(got.y, want.y, TOL, `selective_scan y ${T}×${Di} N ${N}`);
    expectClose(got.state, want.state, TOL, `selective_scan state ${T}×${Di} N ${N}`);
  });

  it('takes both branches of softplus (delta beyond the threshold 20, and very negative)', async () => {
    const c = { T: C + 7, Di: 9, N: 16, seed: 77, deltaLo: -30, deltaHi: 30 };
    const h = inputs(c);
    const want = reference(c, h);
    const got = await runParts(gpu(), c, h, [c.T]);
    expectClose(got.y, want.y, TOL, 'selective_scan y, wide delta');
    expectClose(got.state, want.state, TOL, 'selective_scan state, wide delta');
  });

  it('stays within tolerance over 4096 tokens (Di 8, N 4): the f32 error does not grow with T', async () => {
    const c = { T: 4096, Di: 8, N: 4, seed: 4096 };
    const h = inputs(c);
    const want = reference(c, h);
    const got = await runParts(gpu(), c, h, [c.T]);
    expectClose(got.y, want.y, TOL, 'selective_scan y, 4096 tokens');
    expectClose(got.state, want.state, TOL, 'selective_scan state, 4096 tokens');
  });

  it('carries the state: T1 then T2 tokens equals T1 + T2 at once (chunked and step paths)', async () => {
    const c = { T: 3 * C + 5, Di: 20, N: 16, seed: 31337 };
    const h = inputs(c);
    const want = reference(c, h);
    const whole = await runParts(gpu(), c, h, [c.T]);
    const split = await runParts(gpu(), c, h, [C + 37, c.T - C - 37]);   // boundaries inside chunks
    const small = await runParts(gpu(), c, h, [5, C, 2 * C], 'scan');      // step path, then chunked
    for (const [name, r] of [['split', split], ['small', small]] as const) {
      expectClose(r.y, want.y, TOL, `selective_scan ${name} y vs reference`);
      expectClose(r.state, want.state, TOL, `selective_scan ${name} state vs reference`);
      expectClose(r.y, whole.y, TOL_SPLIT, `selective_scan ${name} y vs one call`);
      expectClose(r.state, whole.state, TOL_SPLIT, `selective_scan ${name} state vs one call`);
    }
  });

  it('carries the state across calls of more chunks than the carry pass unrolls, with a scratch sized for a longer prompt', async () => {
    const c = { T: 21 * C + 10, Di: 7, N: 8, seed: 8086 };
    const h = inputs(c);
    const want = reference(c, h);
    const whole = await runParts(gpu(), c, h, [c.T]);
    // 11 chunks, the step path, exactly 2 chunks, 10 chunks; every part into a scratch of 32 chunks
    const parts = await runParts(gpu(), c, h, [10 * C + 3, 1, 2 * C, 9 * C + 6], 'scan', { scratchT: 32 * C });
    expectClose(parts.y, want.y, TOL, 'selective_scan parts y vs reference');
    expectClose(parts.state, want.state, TOL, 'selective_scan parts state vs reference');
    expectClose(parts.y, whole.y, TOL_SPLIT, 'selective_scan parts y vs one call');
    expectClose(parts.state, whole.state, TOL_SPLIT, 'selective_scan parts state vs one call');
  });

  it('runs with f16 activations where the adapter has shader-f16 (A, D, state, scratch stay f32), and says so where it has not', async () => {
    const g = gpu();
    const c = { T: 2 * C + 5, Di: 70, N: 16, seed: 1661 };
    const h = inputs(c);
    if (!g.report.features.shaderF16) {
      await expect(runParts(g, c, h, [c.T], 'scan', { dtype: 'f16' })).rejects.toThrow(/selective_scan_chunks: f16 needs the shader-f16 feature/);
      await expect(runParts(g, c, h, [5], 'scan', { dtype: 'f16' })).rejects.toThrow(/ssm_step: f16 needs the shader-f16 feature/);
      return;
    }
    const want = reference(c, roundActivationsF16(h));  // the reference on the inputs as f16 holds them
    // the chunked path, then (T <= SCAN_CHUNK) the step path, the state carried
    const got = await runParts(g, c, h, [C + 9, C - 4], 'scan', { dtype: 'f16' });
    // f32 arithmetic on the f16 inputs, then one rounding of y to f16 (relative 2^-11)
    expectClose(got.y, want.y, { atol: TOL.atol, rtol: 1e-3 }, 'selective_scan f16 y');
    expectClose(got.state, want.state, TOL, 'selective_scan f16 state (f32)');
  });

  it('refuses a prompt of more chunks than a grid dimension allows, naming the way out', async () => {
    const g = gpu();
    const maxGroups = g.device.limits.maxComputeWorkgroupsPerDimension;
    const T = maxGroups * C + 1, Di = 1, N = 1;
    const mk = (shape: number[], label: string) => g.empty(shape, 'f32', label);
    const a: SsmArgs = {
      u: mk([T, Di], 'u'), delta: mk([T, Di], 'delta'), A: mk([Di, N], 'A'), B: mk([T, N], 'B'), C: mk([T, N], 'C'),
      D: mk([Di], 'D'), z: mk([T, Di], 'z'), state: mk([Di, N], 'state'), y: mk([T, Di], 'y'),
    };
    try {
      expect(() => selectiveScan(new Recorder(g), a)).toThrow(new RegExp(`selective_scan: T = ${T} tokens make ${maxGroups + 1} chunks of ${C}, over the ${maxGroups} workgroups per dimension; scan the prompt in parts`));
    } finally {
      Object.values(a).forEach((x) => x.dispose());
    }
  });

  it('T = 1 steps repeated (the decode path) equal one chunked prefill', async () => {
    const c = { T: C + 6, Di: 11, N: 16, seed: 999 };
    const h = inputs(c);
    const want = reference(c, h);
    const prefill = await runParts(gpu(), c, h, [c.T]);
    const steps = await runParts(gpu(), c, h, Array(c.T).fill(1));
    expectClose(steps.y, want.y, TOL, 'selective_scan ×T y vs reference');
    expectClose(steps.y, prefill.y, TOL_SPLIT, 'selective_scan ×T y vs chunked prefill');
    expectClose(steps.state, prefill.state, TOL_SPLIT, 'selective_scan ×T state vs chunked prefill');
  });

  it('rejects mismatched shapes, wrong dtypes, N too large, a missing or small scratch, disposed and aliased tensors', async () => {
    const g = gpu();
    const T = 3, Di = 4, N = 2;
    const mk = (shape: number[], label: string) => g.upload(randn(label.length, shape.reduce((a, b) => a * b)), shape, { label });
    const a: SsmArgs = {
      u: mk([T, Di], 'u'), delta: mk([T, Di], 'delta'), A: mk([Di, N], 'A'), B: mk([T, N], 'B'), C: mk([T, N], 'C'),
      D: mk([Di], 'D'), z: mk([T, Di], 'z'), state: mk([Di, N], 'state'), y: g.empty([T, Di], 'f32', 'y'),
    };
    const rec = new Recorder(g);
    const extra: Tensor[] = [];
    const t = (x: Tensor) => (extra.push(x), x);
    expect(() => selectiveScan(rec, { ...a, B: t(mk([T, N + 1], 'B3')) })).toThrow(/selective_scan: B 'B3' has shape \(3, 3\), expected \(3, 2\)/);
    expect(() => selectiveScan(rec, { ...a, delta: t(mk([T + 1, Di], 'd4')) })).toThrow(/selective_scan: delta 'd4' has shape \(4, 4\), expected \(3, 4\)/);
    expect(() => selectiveScan(rec, { ...a, A: t(mk([Di + 1, N], 'A5')) })).toThrow(/selective_scan: A 'A5' has shape \(5, 2\), expected \(Di, N\) = \(4, N\)/);
    expect(() => selectiveScan(rec, { ...a, D: t(mk([Di, 1], 'D2')) })).toThrow(/selective_scan: D 'D2' has shape \(4, 1\), expected \(4\)/);
    expect(() => selectiveScan(rec, { ...a, state: t(mk([Di, N + 1], 'h3')) })).toThrow(/selective_scan: state 'h3' has shape \(4, 3\), expected \(4, 2\)/);
    expect(() => selectiveScan(rec, { ...a, y: t(g.empty([T, Di + 1], 'f32', 'y5')) })).toThrow(/selective_scan: y 'y5' has shape \(3, 5\), expected \(3, 4\)/);
    const big = SSM_MAX_STATE + 1;
    expect(() => selectiveScan(rec, { ...a, A: t(mk([Di, big], 'Abig')) })).toThrow(new RegExp(`selective_scan: state size N = ${big} of A 'Abig' .* exceeds the supported maximum of ${SSM_MAX_STATE}`));
    expect(() => selectiveScan(rec, { ...a, u: t(g.upload(new Int32Array(T * Di), [T, Di], { label: 'ui' })) })).toThrow(/selective_scan: u 'ui' \(3, 4\) must be f32 or f16, got i32/);
    expect(() => selectiveScan(rec, { ...a, A: t(g.upload(new Int32Array(Di * N), [Di, N], { label: 'Ai' })) })).toThrow(/selective_scan: A 'Ai' \(4, 2\) must be f32, got i32/);
    // aliasing: an output sharing a buffer with anything else
    expect(() => selectiveScan(rec, { ...a, y: a.z })).toThrow(/selective_scan: y 'z' shares a buffer with z 'z'/);
    const pair = t(g.empty([2 * 64], 'f32', 'pair'));  // views 256 bytes apart, as the recorder needs
    expect(() => selectiveScan(rec, { ...a, state: pair.view([Di, N], 0, 'hv'), y: pair.view([T, Di], 64, 'yv') })).toThrow(/selective_scan: y 'yv' shares a buffer with state 'hv'/);
    expect(() => selectiveScan(rec, { ...a, state: a.A })).toThrow(/selective_scan: state 'A' shares a buffer with A 'A'/);
    // the chunked path: scratch missing, too small, or aliased
    const TL = C + 1;
    const long = { ...a, u: t(mk([TL, Di], 'uL')), delta: t(mk([TL, Di], 'dL')), B: t(mk([TL, N], 'BL')), C: t(mk([TL, N], 'CL')), z: t(mk([TL, Di], 'zL')), y: t(g.empty([TL, Di], 'f32', 'yL')) };
    expect(() => selectiveScan(rec, long)).toThrow(/selective_scan: T = 65 tokens take the chunked path, which needs scratch: f32 \(3, 4, 3\)/);
    const small = t(g.empty(selectiveScanScratchShape(C, Di, N), 'f32', 'small'));
    expect(() => selectiveScan(rec, { ...long, scratch: small })).toThrow(/selective_scan: scratch 'small' \(2, 4, 3\) f32 must be f32 \(3, 4, 3\) or more chunks for T = 65/);
    const shared = t(g.empty([1024], 'f32', 'shared'));
    const sv = shared.view(selectiveScanScratchShape(TL, Di, N), 512, 'sv');
    expect(() => selectiveScan(rec, { ...long, y: shared.view([TL, Di], 0, 'yv'), scratch: sv })).toThrow(/selective_scan: scratch 'sv' shares a buffer with y 'yv'/);
    // a disposed state
    a.state.dispose();
    expect(() => selectiveScan(new Recorder(g), a)).toThrow(/selective_scan: tensor 'state' \(4, 2\) was disposed/);
    [...Object.values(a), ...extra].forEach((x) => x.dispose());
  });
});

// WebGPU's portable default allows 8 storage buffers per stage: there ssm_step (9)
// cannot run (ssm_step.test.ts checks it refuses), and selectiveScan takes its
// chunked path (at most 7) for every T.
describeGpu('selective_scan on a device with default limits (8 storage buffers per stage)', () => {
  let g: Gpu | undefined;
  beforeAll(async () => {
    if (!SKIP_GPU) g = await Gpu.create({ limits: 'default' });
  });
  afterAll(() => g?.destroy());

  it('has the portable limit', () => {
    expect(g!.device.limits.maxStorageBuffersPerShaderStage).toBe(8);
  });

  it.each([
    [1, 24, 16], [7, 70, 16], [C, 24, 16], [C + 1, 9, 16], [2 * C + 3, 5, 1],
    // more chunks than the carry pass unrolls (U = 8); T <= SCAN_CHUNK with Di over two workgroups, N odd;
    // the largest N, whose B and C tiles (8 KiB) must fit the portable workgroup storage (16 KiB)
    [9 * C + 1, 5, 16], [C - 1, 130, 7], [C + 3, 65, SSM_MAX_STATE],
  ])('T %i × Di %i, N %i: the chunked path matches the reference', async (T, Di, N) => {
    const c = { T, Di, N, seed: T * 104729 + Di * 37 + N };
    const h = inputs(c);
    const want = reference(c, h);
    const got = await runParts(g!, c, h, [T]);
    expectClose(got.y, want.y, TOL, `selective_scan (chunked) y ${T}×${Di} N ${N}`);
    expectClose(got.state, want.state, TOL, `selective_scan (chunked) state ${T}×${Di} N ${N}`);
  });

  it('T = 1 steps repeated equal one prefill', async () => {
    const c = { T: 9, Di: 13, N: 16, seed: 2024 };
    const h = inputs(c);
    const prefill = await runParts(g!, c, h, [c.T]);
    const steps = await runParts(g!, c, h, Array(c.T).fill(1));
    expectClose(steps.y, prefill.y, TOL_SPLIT, 'chunked ×T y vs prefill');
    expectClose(steps.state, prefill.state, TOL_SPLIT, 'chunked ×T state vs prefill');
  });

  it('carries the state through short and long parts, all on the chunked path', async () => {
    const c = { T: 3 * C + 6, Di: 66, N: 16, seed: 6502 };
    const h = inputs(c);
    const want = reference(c, h);
    const got = await runParts(g!, c, h, [3, C, 1, 2 * C + 2]);  // one partial chunk, one full, one token, three chunks
    expectClose(got.y, want.y, TOL, 'chunked parts y vs reference');
    expectClose(got.state, want.state, TOL, 'chunked parts state vs reference');
  });
});
