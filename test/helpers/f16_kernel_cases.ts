// Every kernel's f16 variant (T = f16) run on the GPU and compared with the
// float64 references of src/reference, for an adapter with shader-f16. Node's
// Dawn on SwiftShader lacks it, so test/e2e/f16_kernels.test.ts runs these in
// headless Firefox on lavapipe (test/e2e/f16_page). This module imports
// neither vitest nor node: modules, so the page can bundle it.
//
// Each case uploads seeded random activations as f16, poisons its outputs
// with NaN, runs the kernel through a Recorder, reads back and compares with
// the reference taken ON THE INPUTS AS F16 HOLDS THEM (f16In below), element
// by element: |got - want| <= atol + rtol * |want|, a NaN never passing where
// a number is wanted. Every tensor a case makes is disposed when it ends,
// whether it passed, failed or threw.
//
// The tolerances. Every kernel computes in f32 (design.md: "accumulate in f32
// even when T is f16"): none keeps an f16 intermediate (each .wgsl converts
// an f16 input to f32 on load, stages f32 in workgroup memory and keeps f32
// partials; conv1d_causal's f16 state is a copy of f16 inputs, exact). So an
// f16 output is the f32 result y, within the f32 kernel test's tolerance
// (atol32 + rtol32 |want|, those tests say why), converted to f16 once, and
// WGSL fixes neither the rounding of that conversion nor the fate of a
// subnormal (see the CTS's correctlyRoundedF16: either neighbour is valid, and
// an implementation may flush subnormals):
//   |f16(y) - y| <= 2^-10 |y| + 2^-14
// (one f16 ulp, at most 2^-10 of a normal value; below 2^-14 the result may
// be flushed to 0 or raised to 2^-14). Hence f16Out() below:
//   atol = atol32 (1 + 2^-10) + 2^-14,   rtol = rtol32 (1 + 2^-10) + 2^-10.
// Inputs are made free of f16 subnormals (f16In flushes them on the host), so
// a device that flushes them on load sees exactly the reference's inputs.
// Kernels that choose an index or count (argmax, count_nonfinite, sample) are
// compared exactly, as their f32 tests are.

import type { Gpu, HostArray } from '../../src/runtime/gpu';
import { Recorder, type Binding } from '../../src/runtime/recorder';
import type { DenseDType, Tensor } from '../../src/runtime/tensor';
import type { MemoryCategory } from '../../src/runtime/ledger';
import { f16BitsToF32, f32ToF16Bits } from '../../src/runtime/f16';
import { dequantizeQ4, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import * as ref from '../../src/reference/ops';
import { attention } from '../../src/reference/attention';
import { linear } from '../../src/reference/linear';
import { conv1dCausalRef, selectiveScanRef } from '../../src/reference/mamba_ops';
import { retentionRecurrentRef } from '../../src/reference/retention';
import { moeCombineRef, moeLinearRef, moeRouterRef } from '../../src/reference/moe_ops';
import { argmaxRef, countNonfiniteRef, keptSet, sampleRef, uniform01, type SamplingOptions } from '../../src/reference/sampling';
import { addInplace } from '../../src/kernels/add_inplace';
import { gatedAdd } from '../../src/kernels/gated_add';
import { argmax } from '../../src/kernels/argmax';
import { ATTN_DECODE_CHUNK, attnDecodeScratchShape, attnDecodeThreads, attnDecodeWorkgroups } from '../../src/kernels/attn_decode';
import { attnPrefillThreads, attnPrefillWorkgroups } from '../../src/kernels/attn_prefill';
import { binary, type BinaryOp } from '../../src/kernels/binary';
import { conv1dCausal } from '../../src/kernels/conv1d_causal';
import { countNonfinite } from '../../src/kernels/count_nonfinite';
import { embed } from '../../src/kernels/embed';
import { embedQ4 } from '../../src/kernels/embed_q4';
import { embedQ8 } from '../../src/kernels/embed_q8';
import { layernorm } from '../../src/kernels/layernorm';
import { matmul } from '../../src/kernels/matmul';
import { matmulQ4Tiled } from '../../src/kernels/matmul_q4';
import { matmulQ4Rows } from '../../src/kernels/matmul_q4_rows';
import { matmulQ8 } from '../../src/kernels/matmul_q8';
import { matvec } from '../../src/kernels/matvec';
import { matvecQ4 } from '../../src/kernels/matvec_q4';
import { matvecQ8 } from '../../src/kernels/matvec_q8';
import { moeCombine } from '../../src/kernels/moe_combine';
import { moeGroup, moePlanShape } from '../../src/kernels/moe_group';
import { moeMatmulQ4 } from '../../src/kernels/moe_matmul_q4';
import { moeMatvecQ4 } from '../../src/kernels/moe_matvec_q4';
import { moeRouter } from '../../src/kernels/moe_router';
import { MATVEC_TUNINGS, type MatvecTuning } from '../../src/kernels/tunings';
import { retentionRecurrent, type RetentionArgs } from '../../src/kernels/retention_recurrent';
import { retentionParallel } from '../../src/kernels/retention_parallel';
import { RETENTION_CHUNK, retentionChunkwise, retentionChunkwiseScratchShape } from '../../src/kernels/retention_chunkwise';
import { rmsnorm } from '../../src/kernels/rmsnorm';
import { rope, ropeInvFreq, ropeTable, type RopeLayout } from '../../src/kernels/rope';
import { sample } from '../../src/kernels/sample';
import { SCAN_CHUNK, selectiveScan, selectiveScanScratchShape } from '../../src/kernels/selective_scan';
import { ssmStep, type SsmArgs } from '../../src/kernels/ssm_step';
import { softmax } from '../../src/kernels/softmax';
import { swiglu } from '../../src/kernels/swiglu';
import { unary, type UnaryOp } from '../../src/kernels/unary';
import { randint, randn, randu, rng } from './random';

export interface CaseResult {
  /** Elements (or draws, indices, counts) compared. */
  checked: number;
  /** The first few mismatches of each comparison that had any, with their count; empty when all passed. */
  failures: string[];
  /** The largest |got - want| / (atol + rtol |want|) seen; > 1 is a failure (Infinity for a NaN or a wrong index). */
  worstRatio: number;
  /** The pipelines (keys, e.g. rmsnorm_f16_WG256) the case dispatched: which variants really ran. */
  pipelines: string[];
}

export interface F16Case {
  name: string;
  run(gpu: Gpu): Promise<CaseResult>;
}

export interface Tol { atol: number; rtol: number }

/** One f16 ulp relative to a normal value: the most one WGSL conversion to f16 may move it. */
const F16_ULP = 2 ** -10;
/** The smallest normal f16: below it a result may be flushed to 0 (or raised to it). */
const F16_MIN_NORMAL = 2 ** -14;

/** The tolerance of an f16 output: the f32 kernel's own, then one conversion to f16 (see the top of the file). */
export function f16Out(t: Tol): Tol {
  return { atol: t.atol * (1 + F16_ULP) + F16_MIN_NORMAL, rtol: t.rtol * (1 + F16_ULP) + F16_ULP };
}

/** x as an f16 tensor holds it: rounded to f16 on the host, subnormals flushed to (signed) zero. */
export function f16In(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x as ArrayLike<number>, (v) => {
    const r = f16BitsToF32(f32ToF16Bits(v));
    return Math.abs(r) < F16_MIN_NORMAL ? r * 0 : r;
  });
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((m, v) => m + v * v, 0) / a.length);

/** A recorder that notes the pipeline of every dispatch it records (its key is its label). */
class TracingRecorder extends Recorder {
  constructor(gpu: Gpu, private readonly used: Set<string>, label?: string) {
    super(gpu, label);
  }

  override dispatch(op: string, pipeline: GPUComputePipeline, bindings: readonly Binding[], params: ArrayBuffer | null, groups: readonly number[]): void {
    this.used.add(pipeline.label);
    super.dispatch(op, pipeline, bindings, params, groups);
  }
}

/** What one case made, dispatched and compared; dispose() frees every tensor it made. */
class Scope {
  private readonly tensors: Tensor[] = [];
  private readonly used = new Set<string>();
  private checked = 0;
  private worst = 0;
  private readonly failures: string[] = [];

  constructor(readonly gpu: Gpu) {}

  private keep(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }

  rec(label = 'f16-case'): Recorder {
    return new TracingRecorder(this.gpu, this.used, label);
  }

  /** Uploads host data; with dtype 'f16', pass f16In() values so the upload is exact. */
  upload(data: HostArray, shape: readonly number[], label: string, dtype?: DenseDType, category: MemoryCategory = 'activations'): Tensor {
    return this.keep(this.gpu.upload(data, shape, { label, dtype, category }));
  }

  /** A tensor filled with NaN (or 0xdeadbeef for integers), so an element the kernel fails to write shows up. */
  poisoned(shape: readonly number[], label: string, dtype: DenseDType): Tensor {
    const t = this.keep(this.gpu.empty(shape, dtype, label));
    const n = shape.reduce((a, b) => a * b, 1);
    this.gpu.write(t, dtype === 'f32' || dtype === 'f16' ? new Float32Array(n).fill(NaN) : new Uint32Array(n).fill(0xdeadbeef));
    return t;
  }

  uploadQ4(w: ArrayLike<number>, rows: number, cols: number, group: Q4GroupSize, label: string): { t: Tensor; wd: Float64Array } {
    const q = quantizeQ4(w, rows, cols, group);
    return { t: this.keep(this.gpu.uploadQ4(q, label)), wd: dequantizeQ4(q) };
  }

  uploadQ8(w: ArrayLike<number>, rows: number, cols: number, group: Q4GroupSize, label: string): { t: Tensor; wd: Float64Array } {
    const q = quantizeQ8(w, rows, cols, group);
    return { t: this.keep(this.gpu.uploadQ8(q, label)), wd: dequantizeQ8(q) };
  }

  /** Submits `rec` and reads `t` back. */
  async read(rec: Recorder, t: Tensor): Promise<HostArray> {
    return rec.submitAndRead(t);
  }

  /** Compares element-wise within `tol`; a wanted NaN must come back NaN, any other NaN fails. */
  close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): void {
    if (got.length !== want.length) {
      this.record(what, want.length, 1, [`${got.length} values came back, ${want.length} wanted`], Infinity);
      return;
    }
    let bad = 0;
    let worst = 0;
    const first: string[] = [];
    for (let i = 0; i < want.length; i++) {
      const g = got[i];
      const w = want[i];
      let ratio: number;
      if (Number.isNaN(w)) ratio = Number.isNaN(g) ? 0 : Infinity;
      else {
        const err = Math.abs(g - w);
        const lim = tol.atol + tol.rtol * Math.abs(w);
        ratio = err === 0 ? 0 : lim > 0 ? err / lim : Infinity;
        if (Number.isNaN(ratio)) ratio = Infinity; // got NaN or infinite
      }
      if (!(ratio <= 1)) {
        bad++;
        if (first.length < 3) first.push(`[${i}] got ${g}, want ${w}`);
      }
      worst = Math.max(worst, ratio);
    }
    this.record(`${what} (atol ${tol.atol.toExponential(3)}, rtol ${tol.rtol.toExponential(3)})`, want.length, bad, first, worst);
  }

  /** Exact comparison (indices, counts, copies). */
  equal(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
    this.close(what, got, want, { atol: 0, rtol: 0 });
  }

  /** Adds `n` compared items, `bad` of them failing (first: the first few, described). */
  record(what: string, n: number, bad: number, first: string[], worst: number): void {
    this.checked += n;
    this.worst = Math.max(this.worst, worst);
    if (bad > 0) this.failures.push(`${what}: ${bad} of ${n} wrong; ${first.join('; ')}`);
  }

  result(): CaseResult {
    return { checked: this.checked, failures: [...this.failures], worstRatio: this.worst, pipelines: [...this.used].sort() };
  }

  dispose(): void {
    for (const t of this.tensors.splice(0)) t.dispose();
  }
}

/** A case: `body` runs in a fresh Scope, which is disposed however the body ends. */
function kase(name: string, body: (s: Scope) => Promise<void>): F16Case {
  return {
    name,
    async run(gpu) {
      const s = new Scope(gpu);
      try {
        await body(s);
      } finally {
        s.dispose();
      }
      return s.result();
    },
  };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- elementwise

// add_inplace: acc += x (same shape), then acc += bias (one row). acc is f16
// between the two, so each add is checked on its own: the second against the
// reference on acc as the first left it (read back, exactly as f16 holds it).
// One f32 add of two f16 values is correctly rounded (2^-24), then f16Out.
const ADD_TOL = f16Out({ atol: 0, rtol: 2 ** -24 });

const addInplaceCase = kase('add_inplace', async (s) => {
  for (const [rows, cols] of [[3, 37], [67, 260]]) {
    const seed = rows * 131 + cols;
    const a = f16In(randn(seed, rows * cols));
    const b = f16In(randn(seed + 1, rows * cols));
    const bias = f16In(randn(seed + 2, cols));
    const acc = s.upload(a, [rows, cols], 'acc', 'f16');
    const x = s.upload(b, [rows, cols], 'x', 'f16');
    const tb = s.upload(bias, [cols], 'bias', 'f16');
    const r1 = s.rec();
    addInplace(r1, acc, x);
    const mid = await s.read(r1, acc);
    s.close(`acc + x ${rows}×${cols}`, mid, ref.binary('add', a, b), ADD_TOL);
    const r2 = s.rec();
    addInplace(r2, acc, tb);
    const got = await s.read(r2, acc);
    s.close(`acc + bias row ${rows}×${cols}`, got, Float64Array.from(mid, (v, i) => v + bias[i % cols]), ADD_TOL);
  }
});

// gated_add: acc += sigmoid(gate[r]) * x: one f32 exp, division, multiply
// and add (the f32 test's 1e-6, 1e-6), then f16Out.
const gatedAddCase = kase('gated_add', async (s) => {
  for (const [rows, cols] of [[1, 64], [37, 70]]) {
    const seed = rows * 71 + cols;
    const a = f16In(randn(seed, rows * cols));
    const g = f16In(randn(seed + 1, rows, 3));
    const b = f16In(randn(seed + 2, rows * cols));
    const acc = s.upload(a, [rows, cols], 'acc', 'f16');
    const gate = s.upload(g, [rows, 1], 'gate', 'f16');
    const x = s.upload(b, [rows, cols], 'x', 'f16');
    const r = s.rec();
    gatedAdd(r, acc, gate, x);
    const got = await s.read(r, acc);
    s.close(`acc + sigmoid(gate) x ${rows}×${cols}`, got, Float64Array.from(a, (v, i) => v + b[i] / (1 + Math.exp(-g[Math.floor(i / cols)]))), f16Out({ atol: 1e-6, rtol: 1e-6 }));
  }
});

// binary: one f32 add (correctly rounded) or multiply (exact: two 11-bit
// significands) of f16 inputs, then f16Out.
const BINARY_TOL = f16Out({ atol: 0, rtol: 2 ** -24 });

const binaryCase = (op: BinaryOp) => kase(`binary ${op}`, async (s) => {
  for (const shape of [[7], [5, 3, 67]]) {
    for (const bShape of ['full', 'row'] as const) {
      const n = numel(shape);
      const dim = shape[shape.length - 1];
      const seed = n * 17 + (op === 'add' ? 0 : 1) + (bShape === 'row' ? 2 : 0);
      const a = f16In(randn(seed, n));
      const b = f16In(randn(seed + 1, bShape === 'row' ? dim : n));
      const ta = s.upload(a, shape, 'a', 'f16');
      const tb = s.upload(b, bShape === 'row' ? [dim] : shape, 'b', 'f16');
      const out = s.poisoned(shape, 'out', 'f16');
      const rec = s.rec();
      binary(rec, op, ta, tb, out);
      s.close(`${op} ${shape.join('×')} b ${bShape}`, await s.read(rec, out), ref.binary(op, a, b), BINARY_TOL);
    }
  }
});

// unary: the f32 test's bound (exp to (3 + 2|v|) ulp, A&S erf to 7.5e-8 times
// |x|): atol 2e-6, rtol 1e-5; then f16Out.
const UNARY_TOL = f16Out({ atol: 2e-6, rtol: 1e-5 });
const UNARY_REF: Record<UnaryOp, (x: ArrayLike<number>) => Float64Array> = { silu: ref.silu, gelu: ref.gelu, gelu_tanh: ref.geluTanh };

const unaryCase = (op: UnaryOp) => kase(`unary ${op}`, async (s) => {
  for (const shape of [[7], [3, 333]]) {
    const n = numel(shape);
    const host = randn(n * 13 + op.length, n, 4);
    // the tails: large negative inputs (exp must not overflow), large positive, zero
    [-100, -30, -9, 0, 9, 30, 100].forEach((v, i) => { if (i * 3 < n) host[i * 3] = v; });
    const x = f16In(host);
    const tx = s.upload(x, shape, 'x', 'f16');
    const out = s.poisoned(shape, 'out', 'f16');
    const rec = s.rec();
    unary(rec, op, tx, out);
    s.close(`${op} ${shape.join('×')}`, await s.read(rec, out), UNARY_REF[op](x), UNARY_TOL);
  }
});

// swiglu: silu's f32 exp (relative ~1e-6 at |g| ~ 10) and one multiply: the
// f32 test's atol 1e-6, rtol 1e-5; then f16Out.
const SWIGLU_TOL = f16Out({ atol: 1e-6, rtol: 1e-5 });

const swigluCase = kase('swiglu', async (s) => {
  for (const shape of [[7], [3, 5, 77]]) {
    const n = numel(shape);
    const g0 = randn(n * 5 + 1, n, 4);
    [-100, -30, 30, 100].forEach((v, i) => { if (i * 5 < n) g0[i * 5] = v; });
    const gate = f16In(g0);
    const up = f16In(randn(n * 5 + 2, n, 2));
    const tg = s.upload(gate, shape, 'gate', 'f16');
    const tu = s.upload(up, shape, 'up', 'f16');
    const out = s.poisoned(shape, 'out', 'f16');
    const rec = s.rec();
    swiglu(rec, tg, tu, out);
    s.close(`swiglu ${shape.join('×')}`, await s.read(rec, out), ref.swiglu(gate, up), SWIGLU_TOL);
  }
});

// rope, in place: each output is xa*c -/+ xb*s in f32, a few 2^-24 of |xa| + |xb|
// (the f32 test's atol 2e-6, rtol 1e-6); then f16Out. Dims past rotDim pass
// through untouched (exact). Positions start at 3, so no pair is the identity.
const ROPE_TOL = f16Out({ atol: 2e-6, rtol: 1e-6 });

const ropeCase = (layout: RopeLayout) => kase(`rope ${layout}`, async (s) => {
  // T, H, Dh, rotDim: one workgroup; then 9 × 5 × 32 = 1440 pairs (6 workgroups) with a pass-through tail
  for (const [T, H, Dh, rotDim] of [[3, 2, 8, 8], [9, 5, 72, 64]]) {
    const x = f16In(randn(T * 1009 + H * 101 + Dh * 7 + rotDim + (layout === 'neox' ? 0 : 50000), T * H * Dh, 2));
    const table = ropeTable(ropeInvFreq(rotDim, 10000), 3, T);
    const tx = s.upload(x, [T, H, Dh], 'x', 'f16');
    const tcs = s.upload(table, [T, rotDim / 2, 2], 'cos_sin');
    const rec = s.rec();
    rope(rec, tx, tcs, layout);
    s.close(`rope ${layout} ${T}×${H}×${Dh}/${rotDim}`, await s.read(rec, tx), ref.rope(x, table, T, H, Dh, rotDim, layout), ROPE_TOL);
  }
});

// ---------------------------------------------------------------- row reductions

// rmsnorm: f32 sums of squares (relative ~1e-6): the f32 test's atol 1e-6, rtol
// 1e-5; f16Out for an f16 out, the f32 tolerance itself for an f32 out (the LM
// head's cast: no f16 rounding of the output at all).
const NORM_TOL32 = { atol: 1e-6, rtol: 1e-5 };

const rmsnormCase = (out: 'f16' | 'f32') => kase(`rmsnorm f16 to ${out}`, async (s) => {
  // one row of 7 (idle lanes); 5 rows of 300 (5 workgroups, 2 strides of 256)
  for (const [rows, dim] of [[1, 7], [5, 300]]) {
    const seed = rows * 7919 + dim + (out === 'f32' ? 1 : 0);
    const x = f16In(randn(seed, rows * dim, 3));
    const w = randn(seed + 1, dim);
    const tx = s.upload(x, [rows, dim], 'x', 'f16');
    const tw = s.upload(w, [dim], 'w', 'f32', 'weights');
    // both layouts (a workgroup or a thread per row; tunings.ts gives each adapter one)
    for (const layout of ['workgroup', 'thread'] as const) {
      const to = s.poisoned([rows, dim], 'out', out);
      const rec = s.rec();
      rmsnorm(rec, tx, tw, to, 1e-5, layout);
      s.close(`rmsnorm ${rows}×${dim} to ${out}, a ${layout} per row`, await s.read(rec, to), ref.rmsnorm(x, w, rows, dim, 1e-5), out === 'f16' ? f16Out(NORM_TOL32) : NORM_TOL32);
    }
  }
});

// layernorm: two-pass f32 mean and variance (relative ~1e-6): atol 1e-6, rtol
// 1e-5 as the f32 test; then f16Out. A mean of 5 exercises the centred variance.
const layernormCase = kase('layernorm', async (s) => {
  for (const [rows, dim, hasBias] of [[1, 7, false], [5, 300, true]] as const) {
    const seed = rows * 7919 + dim * 3;
    const x = f16In(randn(seed, rows * dim, 2).map((v) => v + 5));
    const w = randn(seed + 1, dim);
    const b = randn(seed + 2, dim);
    const tx = s.upload(x, [rows, dim], 'x', 'f16');
    const tw = s.upload(w, [dim], 'w', 'f32', 'weights');
    const tb = s.upload(b, [dim], 'b', 'f32', 'weights');
    for (const layout of ['workgroup', 'thread'] as const) {
      const out = s.poisoned([rows, dim], 'out', 'f16');
      const rec = s.rec();
      layernorm(rec, tx, tw, hasBias ? tb : null, out, 1e-5, layout);
      s.close(`layernorm ${rows}×${dim} bias ${hasBias}, a ${layout} per row`, await s.read(rec, out), ref.layernorm(x, w, hasBias ? b : null, rows, dim, 1e-5), f16Out(NORM_TOL32));
    }
  }
});

// softmax: exp in f32 to (3 + 2|v - max|) ulp and an f32 sum: the f32 test's
// atol 1e-9, rtol 1e-5; then f16Out (whose 2^-14 covers the tails' tiny
// probabilities, which f16 may flush). Offset 50: exp without the max
// subtraction would overflow.
const softmaxCase = kase('softmax', async (s) => {
  for (const [rows, dim] of [[1, 7], [4, 600]]) {
    const x = f16In(randn(rows * 4099 + dim, rows * dim, 4).map((v) => v + 50));
    const tx = s.upload(x, [rows, dim], 'x', 'f16');
    const out = s.poisoned([rows, dim], 'out', 'f16');
    const rec = s.rec();
    softmax(rec, tx, out);
    s.close(`softmax ${rows}×${dim}`, await s.read(rec, out), ref.softmax(x, rows, dim), f16Out({ atol: 1e-9, rtol: 1e-5 }));
  }
});

// ---------------------------------------------------------------- token selection (exact)

// argmax over f16 logits: rows of odd V start off the 256-byte binding grid
// and at odd f16 elements; one row has its maximum planted three times (the
// first index wins), one a NaN (torch: the first NaN wins). Compared exactly
// with argmaxRef on the logits as f16 holds them.
const argmaxCase = kase('argmax', async (s) => {
  for (const [rows, V] of [[1, 7], [3, 4097]]) {
    const x = f16In(randn(rows * 31 + V, rows * V, 4));
    if (rows > 1) {
      const row1 = x.subarray(V, 2 * V);
      const peak = f16In([row1.reduce((a, b) => Math.max(a, b), -Infinity) + 1])[0];
      for (const i of [V - 1, 17, 3000]) row1[i] = peak;
      x[2 * V + 1234] = NaN;
      x[2 * V + 2000] = NaN;
    }
    const tx = s.upload(x, [rows, V], 'logits', 'f16');
    const out = s.poisoned([rows + 1], 'out', 'u32');
    const rec = s.rec();
    for (let r = 0; r < rows; r++) argmax(rec, tx, out, r, r);
    argmax(rec, tx, out, undefined, rows); // the last row by default
    const want = Array.from({ length: rows }, (_, r) => argmaxRef(x.subarray(r * V, (r + 1) * V)));
    if (rows > 1 && (want[1] !== 17 || want[2] !== 1234)) throw new Error(`argmax case: the planted values did not win in the reference (${want})`);
    s.equal(`argmax (${rows}, ${V})`, await s.read(rec, out), [...want, want[rows - 1]]);
  }
});

// count_nonfinite over f16 logits: large finite values (|x| up to 6e4, below
// f16's 65504) must not count; planted NaN and ±inf must. Exact.
const countNonfiniteCase = kase('count_nonfinite', async (s) => {
  const SPECIAL = [NaN, Infinity, -Infinity];
  for (const [V, bads] of [[7, [0, 1, 3]], [4097, [0, 3, 40, 300]]] as const) {
    const rows = bads.length;
    const host = Float32Array.from(randn(V + 5, rows * V, 1.5e4), (v) => Math.max(-6e4, Math.min(6e4, v)));
    bads.forEach((bad, r) => randint(V * 13 + r, bad, V).forEach((i, j) => (host[r * V + i] = SPECIAL[j % 3])));
    const x = f16In(host);
    const tx = s.upload(x, [rows, V], 'logits', 'f16');
    const out = s.poisoned([rows + 1], 'out', 'u32');
    const rec = s.rec();
    for (let r = 0; r < rows; r++) countNonfinite(rec, tx, out, r, r);
    countNonfinite(rec, tx, out, undefined, rows);
    const want = Array.from({ length: rows }, (_, r) => countNonfiniteRef(x.subarray(r * V, (r + 1) * V)));
    s.equal(`count_nonfinite (${rows}, ${V})`, await s.read(rec, out), [...want, want[rows - 1]]);
  }
});

// sample over f16 logits, against sampleRef on the logits as f16 holds them
// (f16 rounding makes ties common: both keep a whole tied group). The GPU sums
// exp() in f32 (CDF and top-p masses within ~1e-6 of float64), so a draw may
// differ only when u, or the top-p cut, lies within MARGIN of a boundary; such
// draws must still be a token the reference could give within MARGIN (the
// rule of test/kernels/sample.test.ts). Every other draw is compared exactly.
const MARGIN = 1e-5;

function checkDraws(s: Scope, what: string, got: ArrayLike<number>, x: Float32Array, opts: SamplingOptions, draws: { seed: number; step: number }[]): void {
  const kept = keptSet(x, opts);
  const cum = new Float64Array(kept.probs.length + 1);
  for (let j = 0; j < kept.probs.length; j++) cum[j + 1] = cum[j] + kept.probs[j];
  const wider = opts.topP !== undefined && opts.topP < 1 ? keptSet(x, { ...opts, topP: Math.min(1, opts.topP + 2 * MARGIN) }).indices : kept.indices;
  let bad = 0;
  const first: string[] = [];
  draws.forEach((d, i) => {
    const want = sampleRef(x, { ...opts, ...d });
    const u = uniform01(d.seed, d.step);
    let onCdf = false;
    for (let j = 1; j < kept.indices.length; j++) onCdf ||= Math.abs(u - cum[j]) < MARGIN;
    const onCut = kept.pMargin < MARGIN;
    let ok = got[i] === want;
    if (!ok && (onCdf || onCut)) {
      const j = kept.indices.indexOf(got[i]);
      ok = (j >= 0 && cum[j] <= u + MARGIN && cum[j + 1] >= u - MARGIN) || (onCut && wider.includes(got[i]));
    }
    if (!ok) {
      bad++;
      if (first.length < 3) first.push(`draw ${i} (seed ${d.seed}, step ${d.step}): got ${got[i]}, want ${want}`);
    }
  });
  s.record(what, draws.length, bad, first, bad > 0 ? Infinity : 0);
}

const sampleCase = kase('sample', async (s) => {
  const OPTS: SamplingOptions[] = [{ temperature: 0.8 }, { temperature: 1, topK: 20 }, { temperature: 0.7, topP: 0.9 }, { temperature: 1.2, topK: 50, topP: 0.8 }];
  const DRAWS = 40;
  // V 1000 (<= 4 WG: every filter settled in workgroup memory at once); V 5003
  // (the 8-way search, then the gather), its second row, off the binding grid
  for (const [rows, V] of [[1, 1000], [2, 5003]]) {
    const x = f16In(randn(V * 7 + rows, rows * V, 3));
    const row = x.subarray((rows - 1) * V);
    const tx = s.upload(x, [rows, V], 'logits', 'f16');
    for (const [k, opts] of OPTS.entries()) {
      const u = rng(V * 100 + k);
      const draws = Array.from({ length: DRAWS }, () => ({ seed: Math.floor(u() * 2 ** 32), step: Math.floor(u() * 5000) }));
      const out = s.poisoned([DRAWS], 'tokens', 'u32');
      const rec = s.rec();
      draws.forEach((d, i) => sample(rec, tx, out, { ...opts, ...d }, rows - 1, i));
      checkDraws(s, `sample V ${V} ${JSON.stringify(opts)}`, await s.read(rec, out), row, opts, draws);
    }
  }
});

// ---------------------------------------------------------------- gathers

// embed: a gather of f32 table values converted to f16 once: f16Out of exact.
// An id outside [0, V) must give a NaN row (in f16 too).
const embedCase = kase('embed', async (s) => {
  for (const [vocab, dim, tokens] of [[5, 7, 3], [50, 300, 21]]) {
    const seed = vocab * 31 + dim * 7 + tokens;
    const table = randn(seed, vocab * dim);
    const ids = randint(seed + 1, tokens, vocab);
    if (tokens > 3) [ids[5], ids[tokens - 1]] = [vocab, -1];
    const tt = s.upload(table, [vocab, dim], 'table', 'f32', 'weights');
    const ti = s.upload(ids, [tokens], 'ids');
    const out = s.poisoned([tokens, dim], 'out', 'f16');
    const rec = s.rec();
    embed(rec, tt, ti, out);
    const want = Float64Array.from({ length: tokens * dim }, (_, i) => {
      const id = ids[Math.floor(i / dim)];
      return id >= 0 && id < vocab ? table[id * dim + (i % dim)] : NaN;
    });
    s.close(`embed ${vocab}×${dim} [${tokens}]`, await s.read(rec, out), want, f16Out({ atol: 0, rtol: 0 }));
  }
});

// embed_q4, embed_q8: m + q*d in f32 (q*d exact, one rounding of the sum:
// 2^-24), then f16Out. Reference: rows of the dequantized table; an id
// outside [0, V) gives a NaN row.
const quantEmbedCase = (bits: 4 | 8) => kase(`embed_q${bits}`, async (s) => {
  // vocab, dim, tokens, G: a short group; then 40 tokens of 264 or 260 (over 6 workgroups of code words)
  const shapes: [number, number, number, Q4GroupSize][] = bits === 4 ? [[5, 16, 3, 32], [20, 264, 40, 64]] : [[5, 12, 3, 32], [20, 260, 40, 64]];
  for (const [vocab, dim, tokens, G] of shapes) {
    const seed = vocab * 31 + dim * 7 + tokens + G + bits;
    const w = randn(seed, vocab * dim);
    const { t: tt, wd } = bits === 4 ? s.uploadQ4(w, vocab, dim, G, 'table') : s.uploadQ8(w, vocab, dim, G, 'table');
    const ids = randint(seed + 1, tokens, vocab);
    if (tokens > 3) ids[tokens - 2] = vocab;
    const ti = s.upload(Uint32Array.from(ids), [tokens], 'ids');
    const out = s.poisoned([tokens, dim], 'out', 'f16');
    const rec = s.rec();
    (bits === 4 ? embedQ4 : embedQ8)(rec, tt, ti, out);
    const want = Float64Array.from({ length: tokens * dim }, (_, i) => {
      const id = ids[Math.floor(i / dim)];
      return id < vocab ? wd[id * dim + (i % dim)] : NaN;
    });
    s.close(`embed_q${bits} ${vocab}×${dim} [${tokens}] G${G}`, await s.read(rec, out), want, f16Out({ atol: 0, rtol: 2 ** -24 }));
  }
});

// ---------------------------------------------------------------- linear layers

// f32 accumulation of K products, partial sums ~ sqrt(K) |x| |w|: the f32
// tests' atol = c sqrt(K) max|x| max|w| (c = 2e-6; 1e-6 for q8, whose test
// measured 1.4e-7), rtol 1e-5; the references run on the dequantized weights.
// Then f16Out.
const linearTol = (K: number, x: ArrayLike<number>, w: ArrayLike<number>, c = 2e-6) => f16Out({ atol: c * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 });

const matmulCase = kase('matmul', async (s) => {
  // T, N, K: one tile; 2 × 2 tiles (both partial) with K % 32 != 0
  for (const [T, N, K] of [[3, 7, 5], [70, 67, 100]]) {
    const seed = T * 104729 + N * 7919 + K;
    const x = f16In(randn(seed, T * K));
    const w = randn(seed + 1, N * K, 0.1);
    const tx = s.upload(x, [T, K], 'x', 'f16');
    const tw = s.upload(w, [N, K], 'w', 'f32', 'weights');
    const ty = s.poisoned([T, N], 'y', 'f16');
    const rec = s.rec();
    matmul(rec, tx, tw, ty);
    s.close(`matmul ${T}×${N}×${K}`, await s.read(rec, ty), linear(x, w, T, K, N), linearTol(K, x, w));
  }
});

const quantMatmulCase = (bits: 4 | 8) => kase(`matmul_q${bits}`, async (s) => {
  // T, N, K, G: one tile with a short last group; 2 × 2 tiles with K % 32 != 0 (q8: K % 8 == 4)
  const shapes: [number, number, number, Q4GroupSize][] = bits === 4 ? [[3, 19, 200, 64], [70, 67, 136, 32]] : [[2, 5, 20, 32], [66, 70, 204, 64]];
  for (const [T, N, K, G] of shapes) {
    const seed = T * 104729 + N * 7919 + K * 31 + G + bits;
    const { t: tw, wd } = bits === 4 ? s.uploadQ4(randn(seed, N * K, 0.05), N, K, G, 'w') : s.uploadQ8(randn(seed, N * K, 0.05), N, K, G, 'w');
    const x = f16In(randn(seed + 1, T * K));
    const tx = s.upload(x, [T, K], 'x', 'f16');
    // 4-bit: both prefill kernels (tiled, and matmul_q4_rows; tunings.ts gives each adapter one)
    const kernels = bits === 4 ? [['matmul_q4', matmulQ4Tiled], ['matmul_q4_rows', matmulQ4Rows]] as const : [['matmul_q8', matmulQ8]] as const;
    for (const [name, run] of kernels) {
      const ty = s.poisoned([T, N], 'y', 'f16');
      const rec = s.rec();
      run(rec, tx, tw, ty);
      s.close(`${name} ${T}×${N}×${K} G${G}`, await s.read(rec, ty), linear(x, wd, T, K, N), linearTol(K, x, wd, bits === 4 ? 2e-6 : 1e-6));
    }
  }
});

const matvecCase = kase('matvec', async (s) => {
  // N, K: K < 4 after the 4-wide loop's tail (K % 4 = 1); 3 workgroups with K % 4 = 1
  for (const [N, K] of [[7, 5], [130, 1001]]) {
    const x = f16In(randn(N * 31 + K, K));
    const w = randn(N * 17 + K + 1, N * K);
    const tx = s.upload(x, [1, K], 'x', 'f16');
    const tw = s.upload(w, [N, K], 'w', 'f32', 'weights');
    const ty = s.poisoned([1, N], 'y', 'f16');
    const rec = s.rec();
    matvec(rec, tw, tx, ty);
    s.close(`matvec ${N}×${K}`, await s.read(rec, ty), linear(x, w, 1, K, N), linearTol(K, x, w));
  }
});

const quantMatvecCase = (bits: 4 | 8) => kase(`matvec_q${bits}`, async (s) => {
  // N, K, G: tail words (K % 32 != 0 for q4, K % 16 != 0 for q8); then several workgroups
  const shapes: [number, number, Q4GroupSize][] = bits === 4 ? [[7, 72, 32], [257, 576, 128]] : [[5, 20, 64], [70, 600, 128]];
  // the adapter's default (a thread per 4 rows on a software adapter), and teams of 8 lanes behind a barrier
  const tunings: (MatvecTuning | undefined)[] = [undefined, MATVEC_TUNINGS.gpu.tuning];
  for (const [N, K, G] of shapes) {
    const seed = N * 7919 + K * 31 + G + bits;
    const { t: tw, wd } = bits === 4 ? s.uploadQ4(randn(seed, N * K, 0.05), N, K, G, 'w') : s.uploadQ8(randn(seed, N * K, 0.05), N, K, G, 'w');
    const x = f16In(randn(seed + 1, K));
    const tx = s.upload(x, [K], 'x', 'f16');
    const want = linear(x, wd, 1, K, N);
    for (const tune of tunings) {
      const ty = s.poisoned([N], 'y', 'f16');
      const rec = s.rec();
      (bits === 4 ? matvecQ4 : matvecQ8)(rec, tw, tx, ty, tune);
      s.close(`matvec_q${bits} ${N}×${K} G${G} ${tune ? `WG${tune.WG} TPR${tune.TPR}` : 'default tuning'}`, await s.read(rec, ty), want, linearTol(K, x, wd, bits === 4 ? 2e-6 : 1e-6));
    }
  }
});

// ---------------------------------------------------------------- mixture of experts

// moe_router over f16 logits: the ids compared exactly with moeRouterRef on
// the logits as f16 holds them (f16 makes ties common: lower index first);
// the weights are f32 outputs, so the f32 test's tolerance itself (ratios of
// f32 exps and an f32 sum: atol 1e-7, rtol 3e-5), no f16 rounding.
const moeRouterCase = kase('moe_router', async (s) => {
  // E 8, k 2, softmax then top-k (renormalised), serially; E 60, k 4 on a coarse
  // grid (ties), top-k then softmax, by ranks (64 lanes, a GPU's default)
  for (const [T, E, k, mode, renorm, lanes] of [[5, 8, 2, 'softmax-topk', true, 1], [9, 60, 4, 'topk-softmax', false, 64]] as const) {
    const x = f16In(randn(T * 131 + E, T * E, 2).map((v, i) => (i < E ? Math.round(v) : v)));
    const tl = s.upload(x, [T, E], 'logits', 'f16');
    const ids = s.poisoned([T, k], 'ids', 'u32');
    const w = s.poisoned([T, k], 'weights', 'f32');
    const rec = s.rec();
    moeRouter(rec, tl, ids, w, { mode, renormalize: renorm, lanes });
    await rec.submit();
    const want = moeRouterRef(x, T, E, k, mode, renorm);
    s.equal(`moe_router ids T ${T} E ${E} k ${k} ${mode} lanes ${lanes}`, await s.read(s.rec(), ids), want.ids);
    s.close(`moe_router weights T ${T} E ${E} k ${k} ${mode} lanes ${lanes}`, await s.read(s.rec(), w), want.weights, { atol: 1e-7, rtol: 3e-5 });
  }
});

// moe_matvec_q4: matvec_q4's split over the routed experts' rows only:
// linearTol, then f16Out. x shared (gate/up) and one per slot (down).
const moeMatvecCase = kase('moe_matvec_q4', async (s) => {
  // E, k, N, K, G: a tail word (K % 32 = 8); several workgroups of rows
  for (const [E, k, N, K, G] of [[4, 2, 7, 72, 32], [12, 3, 130, 256, 64]] as [number, number, number, number, Q4GroupSize][]) {
    const seed = E * 7919 + k * 131 + N + K;
    const { t: tw, wd } = s.uploadQ4(randn(seed, E * N * K, 0.05), E * N, K, G, 'w');
    const ids = Uint32Array.from({ length: k }, (_, j) => (E - 1 - 2 * j + E) % E);
    const tids = s.upload(ids, [1, k], 'ids');
    for (const perSlot of [false, true]) {
      const x = f16In(randn(seed + 1, (perSlot ? k : 1) * K));
      const tx = s.upload(x, [perSlot ? k : 1, K], 'x', 'f16');
      const ty = s.poisoned([k, N], 'y', 'f16');
      const rec = s.rec();
      moeMatvecQ4(rec, tw, tx, tids, ty, E);
      s.close(`moe_matvec_q4 E ${E} k ${k} ${N}×${K} G${G} x ${perSlot ? 'per slot' : 'shared'}`, await s.read(rec, ty), moeLinearRef(x, wd, ids, perSlot ? 1 : k, N, K, perSlot ? 'entry' : 'token'), linearTol(K, x, wd));
    }
  }
});

// moe_matmul_q4: matmul_q4's register tile over each expert's gathered rows:
// linearTol, then f16Out. The plan comes from moe_group (no element type: it
// runs on a recorder of its own, so this case's pipelines are all f16).
const moeMatmulCase = kase('moe_matmul_q4', async (s) => {
  // T, E, k, N, K, G: one token; 40 tokens × 2 slots over 5 experts (tiles of 32, partial), K % 32 = 8, gathered by token then by entry
  for (const [T, E, k, N, K, G] of [[1, 4, 2, 19, 72, 32], [40, 5, 2, 70, 136, 64]] as [number, number, number, number, number, Q4GroupSize][]) {
    const seed = T * 104729 + E * 7919 + N * 31 + K;
    const { t: tw, wd } = s.uploadQ4(randn(seed, E * N * K, 0.05), E * N, K, G, 'w');
    const ids = Uint32Array.from({ length: T * k }, (_, i) => (Math.floor(i / k) * 3 + (i % k) * (E > 4 ? 2 : 1)) % E);
    const tids = s.upload(ids, [T, k], 'ids');
    const plan = s.poisoned(moePlanShape(T, k, E), 'plan', 'u32');
    const grouping = new Recorder(s.gpu, 'moe_group');
    const route = moeGroup(grouping, tids, E, plan);
    await grouping.submit();
    for (const rows of ['token', 'entry'] as const) {
      const x = f16In(randn(seed + 1, (rows === 'token' ? T : T * k) * K));
      const tx = s.upload(x, [rows === 'token' ? T : T * k, K], 'x', 'f16');
      // both kernels (tiled, and moe_matmul_q4_rows; tunings.ts gives each adapter one)
      for (const kernel of ['tiled', 'rows'] as const) {
        const ty = s.poisoned([T * k, N], 'y', 'f16');
        const rec = s.rec();
        moeMatmulQ4(rec, tx, tw, ty, route, kernel);
        s.close(`moe_matmul_q4 (${kernel}) T ${T} E ${E} k ${k} ${N}×${K} G${G} x by ${rows}`, await s.read(rec, ty), moeLinearRef(x, wd, ids, k, N, K, rows), linearTol(K, x, wd));
      }
    }
  }
});

// moe_combine: k f32 products and adds, and the residual (the f32 test's atol
// (2k + 1) 2^-24 (max|base| + max|y|), rtol 0), then f16Out. y and the
// residual as f16 holds them; the weights f32.
const moeCombineCase = kase('moe_combine', async (s) => {
  for (const [T, k, D, E] of [[1, 2, 7, 4], [9, 4, 300, 60]]) {
    const seed = T * 7919 + k * 31 + D;
    const y = f16In(randn(seed, T * k * D));
    const base = f16In(randn(seed + 1, T * D));
    const ids = Uint32Array.from({ length: T * k }, (_, i) => (i * 7) % E);
    const w = randu(seed + 2, T * k, 0, 1 / k);
    const ty = s.upload(y, [T * k, D], 'y', 'f16');
    const tids = s.upload(ids, [T, k], 'ids');
    const tw = s.upload(w, [T, k], 'weights', 'f32');
    const out = s.upload(base, [T, D], 'out', 'f16');
    const rec = s.rec();
    moeCombine(rec, ty, tids, tw, out, { experts: E, accumulate: true });
    const tol = f16Out({ atol: (2 * k + 1) * 2 ** -24 * (maxAbs(y) + maxAbs(base)), rtol: 0 });
    s.close(`moe_combine T ${T} k ${k} D ${D}`, await s.read(rec, out), moeCombineRef(y, ids, w, base, T, k, D, E), tol);
  }
});

// ---------------------------------------------------------------- attention

// Scores in f32, exp2, f32 sums and (decode) an f32 log-sum-exp merge of the
// chunks: the f32 tests' atol 1e-5, rtol 1e-5 (outputs ~ N(0, 1)); then
// f16Out. Cache rows past the valid ones are NaN: reading one poisons the output.
const ATTN_TOL = f16Out({ atol: 1e-5, rtol: 1e-5 });
const EXTRA = 3;

/** A (maxT, Hkv, Dh) cache: `valid` random rows as f16 holds them, then NaN. */
function cache(seed: number, maxT: number, valid: number, Hkv: number, Dh: number): Float32Array {
  const host = new Float32Array(maxT * Hkv * Dh).fill(NaN);
  host.set(f16In(randn(seed, valid * Hkv * Dh)));
  return host;
}

const attnDecodeCase = kase('attn_decode', async (s) => {
  // len 7: one chunk, the output written by the split pass itself; len 2 * 128 + 37:
  // three chunks merged by attn_decode_combine (f32 partials). Both forms (workgroups,
  // and the barrier-free threads; tunings.ts gives each adapter one).
  const forms = [['workgroup', attnDecodeWorkgroups], ['thread', attnDecodeThreads]] as const;
  for (const [form, decode] of forms) for (const c of [{ len: 7, H: 4, Hkv: 2, Dh: 16 }, { len: 2 * ATTN_DECODE_CHUNK + 37, H: 6, Hkv: 2, Dh: 32 }]) {
    const maxT = c.len + EXTRA;
    const seed = c.len * 1013 + c.Dh * 7 + c.H;
    const q = f16In(randn(seed, c.H * c.Dh, 2)); // scale 2: peaked softmaxes
    const k = cache(seed + 1, maxT, c.len, c.Hkv, c.Dh);
    const v = cache(seed + 2, maxT, c.len, c.Hkv, c.Dh);
    const tq = s.upload(q, [1, c.H, c.Dh], 'q', 'f16');
    const tk = s.upload(k, [maxT, c.Hkv, c.Dh], 'k', 'f16', 'cache');
    const tv = s.upload(v, [maxT, c.Hkv, c.Dh], 'v', 'f16', 'cache');
    const scratch = s.poisoned(attnDecodeScratchShape(maxT, c.H, c.Dh), 'attn.scratch', 'f32');
    const out = s.poisoned([1, c.H, c.Dh], 'out', 'f16');
    const rec = s.rec();
    decode(rec, tq, tk, tv, out, { len: c.len }, scratch);
    const want = attention(q, k, v, { T: 1, S: maxT, pos0: c.len - 1, H: c.H, Hkv: c.Hkv, Dh: c.Dh, scale: 1 / Math.sqrt(c.Dh) });
    s.close(`attn_decode (${form}) len ${c.len} H ${c.H}/${c.Hkv} Dh ${c.Dh}`, await s.read(rec, out), want, ATTN_TOL);
  }
});

const attnPrefillCase = kase('attn_prefill', async (s) => {
  // continuations (pos0 > 0) with grouped heads: 5 tokens in one tile; 37 tokens × G 3
  // = 111 rows per KV head (4 tiles of 32, the last partial), Dh 64. Both forms
  // (workgroup tiles, and the barrier-free threads; tunings.ts gives each adapter one).
  const forms = [['workgroup', attnPrefillWorkgroups], ['thread', attnPrefillThreads]] as const;
  for (const [form, prefill] of forms) for (const c of [{ T: 5, pos0: 9, H: 4, Hkv: 2, Dh: 16 }, { T: 37, pos0: 20, H: 6, Hkv: 2, Dh: 64 }]) {
    const maxT = c.pos0 + c.T + EXTRA;
    const seed = c.T * 1009 + c.pos0 * 31 + c.Dh * 7 + c.H;
    const q = f16In(randn(seed, c.T * c.H * c.Dh, 2));
    const k = cache(seed + 1, maxT, c.pos0 + c.T, c.Hkv, c.Dh);
    const v = cache(seed + 2, maxT, c.pos0 + c.T, c.Hkv, c.Dh);
    const tq = s.upload(q, [c.T, c.H, c.Dh], 'q', 'f16');
    const tk = s.upload(k, [maxT, c.Hkv, c.Dh], 'k', 'f16', 'cache');
    const tv = s.upload(v, [maxT, c.Hkv, c.Dh], 'v', 'f16', 'cache');
    const out = s.poisoned([c.T, c.H, c.Dh], 'out', 'f16');
    const rec = s.rec();
    prefill(rec, tq, tk, tv, out, { pos0: c.pos0 });
    const want = attention(q, k, v, { ...c, S: maxT, scale: 1 / Math.sqrt(c.Dh) });
    s.close(`attn_prefill (${form}) T ${c.T} pos0 ${c.pos0} H ${c.H}/${c.Hkv} Dh ${c.Dh}`, await s.read(rec, out), want, ATTN_TOL);
  }
});

// ---------------------------------------------------------------- Mamba

// conv1d_causal: f32 sums of Kc products and silu's exp (relative ~1e-6): the
// f32 test's atol 1e-6, rtol 1e-5, then f16Out. The state (of x's dtype) holds
// copies of f16 inputs: exact. Run in two parts, the state carried on the GPU;
// the reference runs once over all tokens.
const conv1dCase = kase('conv1d_causal', async (s) => {
  // a part shorter than Kc-1 then two tiles; Kc 8 with no bias over 2 workgroups of channels
  for (const c of [{ Di: 37, Kc: 4, bias: true, lens: [2, 17] }, { Di: 300, Kc: 8, bias: false, lens: [3, 21] }]) {
    const T = c.lens[0] + c.lens[1];
    const seed = T * 7919 + c.Di * 31 + c.Kc;
    const x = f16In(randn(seed, T * c.Di));
    const w = randn(seed + 1, c.Di * c.Kc, 0.5);
    const b = c.bias ? randn(seed + 2, c.Di, 0.5) : null;
    const state0 = f16In(randn(seed + 3, c.Di * (c.Kc - 1)));
    const tw = s.upload(w, [c.Di, c.Kc], 'w', 'f32', 'weights');
    const tb = b ? s.upload(b, [c.Di], 'b', 'f32', 'weights') : null;
    const ts = s.upload(state0, [c.Di, c.Kc - 1], 'state', 'f16', 'cache');
    const got = new Float32Array(T * c.Di);
    let t0 = 0;
    for (const len of c.lens) {
      const tx = s.upload(x.subarray(t0 * c.Di, (t0 + len) * c.Di), [len, c.Di], 'x', 'f16');
      const to = s.poisoned([len, c.Di], 'out', 'f16');
      const rec = s.rec();
      conv1dCausal(rec, tx, tw, tb, ts, to);
      got.set(await s.read(rec, to) as Float32Array, t0 * c.Di);
      t0 += len;
    }
    const want = conv1dCausalRef(x, w, b, state0, T, c.Di, c.Kc);
    s.close(`conv1d_causal out ${T}×${c.Di} Kc ${c.Kc} parts ${c.lens}`, got, want.out, f16Out({ atol: 1e-6, rtol: 1e-5 }));
    s.equal(`conv1d_causal state (copies of f16 inputs) Di ${c.Di} Kc ${c.Kc}`, await s.read(s.rec(), ts), want.state);
  }
});

// The selective scan (chunked selective_scan and recurrent ssm_step): the f32
// tests' bound (an f32 recurrence damped by its decays, measured within 7.8e-6
// absolute at T = 4096, and exp2/log to a few ulp): atol 2e-5, rtol 1e-4; y
// with f16Out, the state (f32) with that bound itself. Inputs like a real
// model's (test/helpers/mamba_scan.ts, which this page cannot import: it pulls
// in vitest through helpers/gpu.ts); the activations u, delta, B, C, z as f16
// holds them; A, D and the state f32; a non-zero starting state.
const SCAN_TOL32 = { atol: 2e-5, rtol: 1e-4 };

function scanInputs(T: number, Di: number, N: number, seed: number) {
  const jitter = randu(seed + 2, Di * N, 0.9, 1.1);
  return {
    u: f16In(randn(seed, T * Di)),
    delta: f16In(randu(seed + 1, T * Di, -4, 0)),
    A: Float32Array.from(jitter, (j, i) => -((i % N) + 1) * j),
    B: f16In(randn(seed + 3, T * N)),
    C: f16In(randn(seed + 4, T * N)),
    D: randn(seed + 5, Di),
    z: f16In(randn(seed + 6, T * Di)),
    state: randn(seed + 7, Di * N, 0.5),
  };
}

/** Runs the scan over parts of the tokens, each its own submit, the state carried on the GPU; checks y and the final state. */
async function scanParts(s: Scope, name: string, Di: number, N: number, lens: number[], seed: number, run: 'scan' | 'step'): Promise<void> {
  const T = lens.reduce((a, b) => a + b, 0);
  const h = scanInputs(T, Di, N, seed);
  const A = s.upload(h.A, [Di, N], 'A', 'f32', 'weights');
  const D = s.upload(h.D, [Di], 'D', 'f32', 'weights');
  const state = s.upload(h.state, [Di, N], 'state', 'f32', 'cache');
  const scratch = run === 'scan' ? s.poisoned(selectiveScanScratchShape(Math.max(...lens), Di, N), 'scan.scratch', 'f32') : undefined;
  const y = new Float32Array(T * Di);
  let t0 = 0;
  for (const len of lens) {
    const rows = (x: Float32Array, w: number) => x.subarray(t0 * w, (t0 + len) * w);
    const a: SsmArgs = {
      u: s.upload(rows(h.u, Di), [len, Di], 'u', 'f16'),
      delta: s.upload(rows(h.delta, Di), [len, Di], 'delta', 'f16'),
      A,
      B: s.upload(rows(h.B, N), [len, N], 'B', 'f16'),
      C: s.upload(rows(h.C, N), [len, N], 'C', 'f16'),
      D,
      z: s.upload(rows(h.z, Di), [len, Di], 'z', 'f16'),
      state,
      y: s.poisoned([len, Di], 'y', 'f16'),
    };
    const rec = s.rec();
    if (run === 'scan') {
      if (len <= SCAN_CHUNK) throw new Error(`${name}: a part of ${len} tokens would take the ssm_step path, not the chunked one`);
      selectiveScan(rec, { ...a, scratch });
    } else ssmStep(rec, a);
    y.set(await s.read(rec, a.y) as Float32Array, t0 * Di);
    t0 += len;
  }
  const want = selectiveScanRef({ ...h, T, Di, N });
  s.close(`${name} y ${T}×${Di} N ${N} parts ${lens}`, y, want.y, f16Out(SCAN_TOL32));
  s.close(`${name} state (f32) Di ${Di} N ${N}`, await s.read(s.rec(), state), want.state, SCAN_TOL32);
}

const selectiveScanCase = kase('selective_scan', async (s) => {
  const C = SCAN_CHUNK;
  // the chunked path (chunks, carry, outputs): 3 chunks from the starting state, then
  // 2 more continuing from the carried one; Di over two workgroups of 64
  await scanParts(s, 'selective_scan', 70, 16, [2 * C + 5, C + 9], 1661, 'scan');
  // N odd and over 32, Di under one workgroup: 2 chunks, then 4 (the last of one token)
  await scanParts(s, 'selective_scan', 6, 33, [C + 3, 3 * C + 1], 1662, 'scan');
});

const ssmStepCase = kase('ssm_step', async (s) => {
  // decode: T = 1 steps, then a short prompt, the state carried
  await scanParts(s, 'ssm_step', 70, 16, [1, 1, 5], 1660, 'step');
  // the largest N (64), Di over three workgroups
  await scanParts(s, 'ssm_step', 130, 64, [1, 2], 1663, 'step');
});

// ---------------------------------------------------------------- RetNet retention

// Retention in its three forms (recurrent, parallel, chunkwise): each sums in
// f32 what the reference sums in float64, an output over up to T (or
// ~1 / (1 - gamma)) decayed terms of either sign, so the f32 test's bound
// (test/kernels/retention.test.ts) is relative to the RMS of the reference:
// atol 1e-5 × RMS (of o, or of S), rtol 1e-4. o (f16) with f16Out; the state
// S (f32) with that bound itself. q, k, v as f16 holds them; decay and the
// carried state S0 (non-zero) f32; scale Dk^-0.5 (the model's). One call from
// S0, checked against the recurrent float64 reference.
const RETENTION_TOL32 = { atol: 1e-5, rtol: 1e-4 };  // atol × RMS of the reference
const NEAR_ONE = 1 - 2 ** -12;
const flaDecays = (H: number) => Array.from({ length: H }, (_, h) => 1 - 2 ** (-5 - h));

type RetentionForm = 'recurrent' | 'parallel' | 'chunkwise';
interface RetentionShape { T: number; H: number; Dk: number; Dv: number; decay: number[]; chunk?: number }

async function retentionRun(s: Scope, form: RetentionForm, c: RetentionShape): Promise<void> {
  const { T, H, Dk, Dv } = c;
  const seed = T * 7919 + H * 131 + Dk * 31 + Dv;
  const q = f16In(randn(seed, T * H * Dk));
  const k = f16In(randn(seed + 1, T * H * Dk));
  const v = f16In(randn(seed + 2, T * H * Dv));
  const decay = Float32Array.from(c.decay);
  const state0 = randn(seed + 3, H * Dk * Dv, 0.5);
  const scale = 1 / Math.sqrt(Dk);
  const a: RetentionArgs = {
    q: s.upload(q, [T, H, Dk], 'q', 'f16'),
    k: s.upload(k, [T, H, Dk], 'k', 'f16'),
    v: s.upload(v, [T, H, Dv], 'v', 'f16'),
    decay: s.upload(decay, [H], 'decay', 'f32', 'weights'),
    state: s.upload(state0, [H, Dk, Dv], 'state', 'f32', 'cache'),
    out: s.poisoned([T, H, Dv], 'out', 'f16'),
    scale,
  };
  const rec = s.rec();
  if (form === 'recurrent') retentionRecurrent(rec, a);
  else if (form === 'parallel') retentionParallel(rec, a);
  else {
    const chunk = c.chunk ?? RETENTION_CHUNK;
    if (T <= 2 * chunk || T % chunk === 0) throw new Error(`retention_chunkwise: ${T} tokens are not several chunks of ${chunk} and a remainder`);
    retentionChunkwise(rec, { ...a, chunk, scratch: s.poisoned(retentionChunkwiseScratchShape(T, H, Dk, Dv, chunk), 'retention.scratch', 'f32') });
  }
  const o = await s.read(rec, a.out);
  const want = retentionRecurrentRef({ q, k, v, decay, state: state0, scale, T, H, Dk, Dv });
  const what = `retention_${form} T ${T} H ${H} Dk ${Dk} Dv ${Dv}${form === 'chunkwise' ? ` chunk ${c.chunk ?? RETENTION_CHUNK}` : ''}`;
  s.close(`${what} o`, o, want.o, f16Out({ atol: RETENTION_TOL32.atol * rms(want.o), rtol: RETENTION_TOL32.rtol }));
  s.close(`${what} state (f32)`, await s.read(s.rec(), a.state), want.state, { atol: RETENTION_TOL32.atol * rms(want.state), rtol: RETENTION_TOL32.rtol });
}

const retentionRecurrentCase = kase('retention_recurrent', async (s) => {
  // decode: one token, one row lane (R 1); a short prompt with Dk 36: R 4 row
  // lanes of 9 rows summed through workgroup memory, Dv 12 (3 column lanes)
  await retentionRun(s, 'recurrent', { T: 1, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5] });
  await retentionRun(s, 'recurrent', { T: 37, H: 3, Dk: 36, Dv: 12, decay: flaDecays(3) });
});

const retentionParallelCase = kase('retention_parallel', async (s) => {
  // one tile; two query tiles, two 32-wide Dk passes, Dv 132 over NV 4 column blocks
  // (two workgroups); retention_state with carry for the new state in both
  await retentionRun(s, 'parallel', { T: 5, H: 2, Dk: 8, Dv: 12, decay: [NEAR_ONE, 0.5] });
  await retentionRun(s, 'parallel', { T: 45, H: 2, Dk: 36, Dv: 132, decay: [0.97, 1 - 2 ** -5] });
});

const retentionChunkwiseCase = kase('retention_chunkwise', async (s) => {
  // retention_state per chunk, the carry (retention_chunkwise), retention_parallel over
  // the chunks: 3 chunks of 64 and 5 tokens; 4 chunks of 32 and 7
  await retentionRun(s, 'chunkwise', { T: 3 * RETENTION_CHUNK + 5, H: 2, Dk: 16, Dv: 32, decay: [NEAR_ONE, 0.5] });
  await retentionRun(s, 'chunkwise', { T: 4 * 32 + 7, H: 3, Dk: 8, Dv: 12, decay: flaDecays(3), chunk: 32 });
});

/** Every case, in the order the page runs them. */
export const F16_CASES: readonly F16Case[] = [
  addInplaceCase,
  argmaxCase,
  attnDecodeCase,
  attnPrefillCase,
  binaryCase('add'),
  binaryCase('mul'),
  conv1dCase,
  countNonfiniteCase,
  embedCase,
  quantEmbedCase(4),
  quantEmbedCase(8),
  gatedAddCase,
  layernormCase,
  matmulCase,
  quantMatmulCase(4),
  quantMatmulCase(8),
  matvecCase,
  quantMatvecCase(4),
  quantMatvecCase(8),
  moeCombineCase,
  moeMatmulCase,
  moeMatvecCase,
  moeRouterCase,
  retentionChunkwiseCase,
  retentionParallelCase,
  retentionRecurrentCase,
  rmsnormCase('f16'),
  rmsnormCase('f32'),
  ropeCase('neox'),
  ropeCase('interleaved'),
  sampleCase,
  selectiveScanCase,
  ssmStepCase,
  softmaxCase,
  swigluCase,
  unaryCase('silu'),
  unaryCase('gelu'),
  unaryCase('gelu_tanh'),
];
