// Seeded inputs and a GPU driver for the selective-scan tests (selective_scan,
// ssm_step): inputs shaped like a real Mamba's, and a run over consecutive
// parts of the tokens with the state carried on the GPU between them.

import { Recorder } from '../../src/runtime/recorder';
import type { Gpu } from '../../src/runtime/gpu';
import { selectiveScan, selectiveScanScratchShape } from '../../src/kernels/selective_scan';
import { ssmStep, type SsmArgs } from '../../src/kernels/ssm_step';
import { selectiveScanRef } from '../../src/reference/mamba_ops';
import { poisoned } from './gpu';
import { randn, randu } from './random';
import { roundF16 } from '../../src/runtime/f16';

export interface ScanCase { T: number; Di: number; N: number; seed: number; deltaLo?: number; deltaHi?: number }
export type ScanHost = ReturnType<typeof scanInputs>;

/**
 * Seeded inputs like a real model's: A = -(1..N) per channel (A_log = log(1..N)),
 * jittered by ±10%; delta in [-4, 0] so dt = softplus(delta) ~ 0.02 .. 0.7;
 * a non-zero starting state (a carried one must be read).
 */
export function scanInputs(c: ScanCase) {
  const { T, Di, N, seed } = c;
  const jitter = randu(seed + 2, Di * N, 0.9, 1.1);
  return {
    u: randn(seed, T * Di),
    delta: randu(seed + 1, T * Di, c.deltaLo ?? -4, c.deltaHi ?? 0),
    A: Float32Array.from(jitter, (j, i) => -((i % N) + 1) * j),
    B: randn(seed + 3, T * N),
    C: randn(seed + 4, T * N),
    D: randn(seed + 5, Di),
    z: randn(seed + 6, T * Di),
    state: randn(seed + 7, Di * N, 0.5),
  };
}

/**
 * The inputs as an f16 run sees them: the activations (u, delta, B, C, z) rounded
 * to f16; A, D and the state stay f32. The reference of an f16 run is taken on these.
 */
export function roundActivationsF16(h: ScanHost): ScanHost {
  const r = (x: Float32Array) => Float32Array.from(x, roundF16);
  return { ...h, u: r(h.u), delta: r(h.delta), B: r(h.B), C: r(h.C), z: r(h.z) };
}

export function scanReference(c: ScanCase, h: ScanHost) {
  return selectiveScanRef({ ...h, T: c.T, Di: c.Di, N: c.N });
}

/**
 * Runs selectiveScan ('scan', with a scratch) or ssmStep ('step') over
 * consecutive parts of the tokens of lengths `lens`, each part its own submit,
 * the state carried on the GPU. y is poisoned with NaN before each part.
 * dtype 'f16' uploads the activations (u, delta, B, C, z, y) as f16 (the device
 * must have shader-f16); scratchT sizes the scratch for more tokens than the parts
 * need (as a model does, for its longest prompt).
 */
export async function runScan(g: Gpu, c: ScanCase, h: ScanHost, lens: number[], run: 'scan' | 'step' = 'scan', opts: { dtype?: 'f32' | 'f16'; scratchT?: number } = {}): Promise<{ y: Float32Array; state: Float32Array }> {
  const { Di, N } = c;
  const dtype = opts.dtype ?? 'f32';
  const A = g.upload(h.A, [Di, N], { label: 'A', category: 'weights' });
  const D = g.upload(h.D, [Di], { label: 'D', category: 'weights' });
  const state = g.upload(h.state, [Di, N], { label: 'state', category: 'cache' });
  const scratch = g.empty(selectiveScanScratchShape(Math.max(opts.scratchT ?? 0, ...lens), Di, N), 'f32', 'scratch', 'scratch');
  const y = new Float32Array(lens.reduce((a, b) => a + b, 0) * Di);
  const parts: SsmArgs[] = [];
  try {
    let t0 = 0;
    for (const T of lens) {
      const rows = (x: Float32Array, w: number) => x.subarray(t0 * w, (t0 + T) * w);
      const t: SsmArgs = {
        u: g.upload(rows(h.u, Di), [T, Di], { label: 'u', dtype }),
        delta: g.upload(rows(h.delta, Di), [T, Di], { label: 'delta', dtype }),
        A,
        B: g.upload(rows(h.B, N), [T, N], { label: 'B', dtype }),
        C: g.upload(rows(h.C, N), [T, N], { label: 'C', dtype }),
        D,
        z: g.upload(rows(h.z, Di), [T, Di], { label: 'z', dtype }),
        state,
        y: poisoned(g, [T, Di], 'y', dtype),
      };
      parts.push(t);
      const rec = new Recorder(g);
      if (run === 'scan') selectiveScan(rec, { ...t, scratch });
      else ssmStep(rec, t);
      y.set((await rec.submitAndRead(t.y)) as Float32Array, t0 * Di);
      t0 += T;
    }
    return { y, state: (await new Recorder(g).submitAndRead(state)) as Float32Array };
  } finally {
    for (const t of parts) [t.u, t.delta, t.B, t.C, t.z, t.y].forEach((x) => x.dispose());
    [A, D, state, scratch].forEach((x) => x.dispose());
  }
}
