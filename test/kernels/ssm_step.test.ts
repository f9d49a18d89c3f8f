import { afterAll, beforeAll, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { SSM_MAX_STATE, ssmStep, type SsmArgs } from '../../src/kernels/ssm_step';
import { describeGpu, SKIP_GPU, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { roundActivationsF16, runScan, scanInputs, scanReference } from '../helpers/mamba_scan';

// The serial f32 recurrence against the float64 one: the error of a step is damped
// by the decays after it (< 1), so it stays bounded with T; measured under 2.5e-6
// absolute for |y| up to ~17 here. GPU exp2/log: a few ulps (see selective_scan.test.ts).
const TOL = { atol: 2e-5, rtol: 1e-4 };

describeGpu('ssm_step', () => {
  const gpu = useGpu();

  it.each([
    // decode (T = 1), short prompts, and longer walks; Di across a workgroup (64); N from 1 to the maximum
    [1, 24, 16], [1, 70, 16], [1, 3, 1], [1, 5, SSM_MAX_STATE], [7, 70, 16], [64, 24, 16], [150, 9, 4], [20, 6, SSM_MAX_STATE],
    // Di exactly one and two workgroups (no idle lanes), Di over three; N odd, and the largest N over a workgroup boundary
    [1, 64, 16], [3, 128, 16], [2, 200, 8], [33, 65, 33], [4, 65, SSM_MAX_STATE],
  ])('T %i × Di %i, N %i matches the serial float64 reference, final state included', async (T, Di, N) => {
    const c = { T, Di, N, seed: T * 6151 + Di * 13 + N };
    const h = scanInputs(c);
    const want = scanReference(c, h);
    const got = await runScan(gpu(), c, h, [T], 'step');
    expectClose(got.y, want.y, TOL, `ssm_step y ${T}×${Di} N ${N}`);
    expectClose(got.state, want.state, TOL, `ssm_step state ${T}×${Di} N ${N}`);
  });

  it('takes both branches of softplus (delta beyond the threshold 20, and very negative)', async () => {
    const c = { T: 40, Di: 9, N: 16, seed: 71, deltaLo: -30, deltaHi: 30 };
    const h = scanInputs(c);
    const want = scanReference(c, h);
    const got = await runScan(gpu(), c, h, [c.T], 'step');
    expectClose(got.y, want.y, TOL, 'ssm_step y, wide delta');
    expectClose(got.state, want.state, TOL, 'ssm_step state, wide delta');
  });

  it('carries the state exactly: T = 1 steps, or parts, equal one call over all T tokens bitwise', async () => {
    const c = { T: 23, Di: 11, N: 16, seed: 998 };
    const h = scanInputs(c);
    const all = await runScan(gpu(), c, h, [c.T], 'step');
    const steps = await runScan(gpu(), c, h, Array(c.T).fill(1), 'step');
    const parts = await runScan(gpu(), c, h, [4, 19], 'step');
    // One invocation per channel does the same f32 operations in the same order however the tokens arrive.
    for (const r of [steps, parts]) {
      expect(Array.from(r.y)).toEqual(Array.from(all.y));
      expect(Array.from(r.state)).toEqual(Array.from(all.state));
    }
    const want = scanReference(c, h);
    expectClose(all.y, want.y, TOL, 'ssm_step y vs reference');
  });

  it('runs with f16 activations where the adapter has shader-f16 (A, D, state stay f32), and says so where it has not', async () => {
    const g = gpu();
    const c = { T: 13, Di: 70, N: 16, seed: 1660 };
    const h = scanInputs(c);
    if (!g.report.features.shaderF16) {
      await expect(runScan(g, c, h, [c.T], 'step', { dtype: 'f16' })).rejects.toThrow(/ssm_step: f16 needs the shader-f16 feature/);
      return;
    }
    const want = scanReference(c, roundActivationsF16(h));  // the reference on the inputs as f16 holds them
    const got = await runScan(g, c, h, [1, 12], 'step', { dtype: 'f16' });  // a decode step, then a short prompt
    // f32 arithmetic on the f16 inputs, then one rounding of y to f16 (relative 2^-11)
    expectClose(got.y, want.y, { atol: TOL.atol, rtol: 1e-3 }, 'ssm_step f16 y');
    expectClose(got.state, want.state, TOL, 'ssm_step f16 state (f32)');
  });

  it('rejects mismatched shapes, wrong dtypes, N too large, disposed and aliased tensors, naming them', async () => {
    const g = gpu();
    const T = 1, Di = 4, N = 2;
    const mk = (shape: number[], label: string) => g.upload(randn(label.length + 3, shape.reduce((a, b) => a * b)), shape, { label });
    const a: SsmArgs = {
      u: mk([T, Di], 'u'), delta: mk([T, Di], 'delta'), A: mk([Di, N], 'A'), B: mk([T, N], 'B'), C: mk([T, N], 'C'),
      D: mk([Di], 'D'), z: mk([T, Di], 'z'), state: mk([Di, N], 'state'), y: g.empty([T, Di], 'f32', 'y'),
    };
    const rec = new Recorder(g);
    const extra: Tensor[] = [];
    const t = (x: Tensor) => (extra.push(x), x);
    expect(() => ssmStep(rec, { ...a, C: t(mk([T, N + 1], 'C3')) })).toThrow(/ssm_step: C 'C3' has shape \(1, 3\), expected \(1, 2\)/);
    expect(() => ssmStep(rec, { ...a, z: t(mk([2, Di], 'z2')) })).toThrow(/ssm_step: z 'z2' has shape \(2, 4\), expected \(1, 4\)/);
    expect(() => ssmStep(rec, { ...a, y: t(g.empty([T, Di + 1], 'f32', 'y5')) })).toThrow(/ssm_step: y 'y5' has shape \(1, 5\), expected \(1, 4\)/);
    expect(() => ssmStep(rec, { ...a, u: t(mk([T, Di, 1], 'u3')) })).toThrow(/ssm_step: u 'u3' has shape \(1, 4, 1\), expected \(T, Di\)/);
    expect(() => ssmStep(rec, { ...a, A: t(mk([Di, SSM_MAX_STATE + 1], 'Abig')) })).toThrow(/ssm_step: state size N = 65 of A 'Abig' .* exceeds the supported maximum of 64/);
    expect(() => ssmStep(rec, { ...a, D: t(g.upload(new Int32Array(Di), [Di], { label: 'Di32' })) })).toThrow(/ssm_step: D 'Di32' \(4\) must be f32, got i32/);
    expect(() => ssmStep(rec, { ...a, state: a.A })).toThrow(/ssm_step: state 'A' shares a buffer with A 'A'/);
    expect(() => ssmStep(rec, { ...a, y: a.u })).toThrow(/ssm_step: y 'u' shares a buffer with u 'u'/);
    a.state.dispose();
    expect(() => ssmStep(new Recorder(g), a)).toThrow(/ssm_step: tensor 'state' \(4, 2\) was disposed/);
    [...Object.values(a), ...extra].forEach((x) => x.dispose());
  });
});

// WebGPU's portable default allows 8 storage buffers per stage; ssm_step binds 9.
describeGpu('ssm_step on a device with default limits (8 storage buffers per stage)', () => {
  let g: Gpu | undefined;
  beforeAll(async () => {
    if (!SKIP_GPU) g = await Gpu.create({ limits: 'default' });
  });
  afterAll(() => g?.destroy());

  it('refuses, naming the limit and the way out', async () => {
    expect(g!.device.limits.maxStorageBuffersPerShaderStage).toBe(8);
    const c = { T: 1, Di: 4, N: 2, seed: 1 };
    await expect(runScan(g!, c, scanInputs(c), [1], 'step')).rejects.toThrow(/ssm_step: needs 9 storage buffers per shader stage, this device allows 8; use selectiveScan with a scratch/);
  });
});
