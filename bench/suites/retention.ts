// Retention suite: RetNet's parallel form (src/kernels/retention_parallel.ts,
// quadratic in the tokens T of a call) against its chunkwise form
// (retention_chunkwise.ts, linear in T, chunks of RETENTION_CHUNK) at the
// ~130M RetNet's heads (the compare preset's: H 8, Dk 96, Dv 192, fla's
// decays γ_h = 1 - 2^(-5-h), scale Dk^-0.5), f32 activations (--f16 is not
// used here), over prompt lengths T (--prompts). The crossover, the shortest
// T from which the chunkwise form is faster at every longer T timed, is what
// RETNET_PARALLEL_MAX_T (src/models/retnet/model.ts: a prefill part of up to
// that many tokens takes the parallel form) is set from, and is printed
// beside it. The choice is the kernel's alone: the rest of a RetNet layer
// does the same work in either form. That constant is this suite's one
// import from a model family.
// Both forms are checked against the float64 reference, outputs and final
// state, over several chunks before anything is timed.

import type { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { Recorder } from '../../src/runtime/recorder';
import type { RetentionArgs } from '../../src/kernels/retention_recurrent';
import { retentionParallel } from '../../src/kernels/retention_parallel';
import { RETENTION_CHUNK, retentionChunkwise, retentionChunkwiseScratchShape } from '../../src/kernels/retention_chunkwise';
import { retentionRecurrentRef } from '../../src/reference/retention';
import { RETNET_PARALLEL_MAX_T } from '../../src/models/retnet/model';
import { logged, printTable, timeGpu, type BenchOptions, type Row } from '../harness';

/** The ~130M RetNet's retention heads (hidden 768, expand_k 1, expand_v 2, 8 heads). */
const H = 8;
const DK = 96;
const DV = 192;
const DECAY = Float32Array.from({ length: H }, (_, h) => 1 - 2 ** (-5 - h));
const SCALE = 1 / Math.sqrt(DK);

const LENGTHS = [32, 64, 96, 128, 192, 256, 512];
const QUICK_LENGTHS = [32, 64, 128, 256];
/** Tokens of the check: several chunks and a part of one. */
const VERIFY_T = 3 * RETENTION_CHUNK + 5;

type Form = 'parallel' | 'chunkwise';
const FORMS: Form[] = ['parallel', 'chunkwise'];

/** Seeded uniform values in [-1, 1) (q, k, v) or [-0.5, 0.5) (the carried state). */
function uniform(n: number, seed: number, amp = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => amp * (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1));
}

/** One call's tensors at T tokens, the carried state non-zero; dispose() frees them all. */
function tensors(gpu: Gpu, T: number) {
  const host = { q: uniform(T * H * DK, T * 3 + 1), k: uniform(T * H * DK, T * 3 + 2), v: uniform(T * H * DV, T * 3 + 3), state: uniform(H * DK * DV, 7, 0.5) };
  const made: Tensor[] = [];
  const up = (x: Float32Array, shape: number[], label: string, category: 'activations' | 'weights' | 'cache' = 'activations') => {
    const t = gpu.upload(x, shape, { label: `bench.retention.${label}`, dtype: 'f32', category });
    made.push(t);
    return t;
  };
  const args: RetentionArgs = {
    q: up(host.q, [T, H, DK], 'q'),                // (T, H, Dk)
    k: up(host.k, [T, H, DK], 'k'),                // (T, H, Dk)
    v: up(host.v, [T, H, DV], 'v'),                // (T, H, Dv)
    decay: up(DECAY, [H], 'decay', 'weights'),     // (H)
    state: up(host.state, [H, DK, DV], 'state', 'cache'), // (H, Dk, Dv)
    out: gpu.empty([T, H, DV], 'f32', 'bench.retention.out'), // (T, H, Dv)
    scale: SCALE,
  };
  made.push(args.out);
  const scratch = gpu.empty(retentionChunkwiseScratchShape(T, H, DK, DV), 'f32', 'bench.retention.scratch', 'scratch'); // (chunks, H, Dk, Dv)
  made.push(scratch);
  const record = (form: Form) => (rec: Recorder) => (form === 'parallel' ? retentionParallel(rec, args) : retentionChunkwise(rec, { ...args, scratch }));
  return { host, args, record, dispose: () => made.forEach((t) => t.dispose()) };
}

/** Each form from the same state against the float64 reference: |got - want| <= 1e-4 (RMS of want + |want|). */
async function verify(gpu: Gpu): Promise<void> {
  const c = tensors(gpu, VERIFY_T);
  try {
    const want = retentionRecurrentRef({ ...c.host, decay: DECAY, scale: SCALE, T: VERIFY_T, H, Dk: DK, Dv: DV });
    for (const form of FORMS) {
      gpu.write(c.args.state, c.host.state);
      const rec = new Recorder(gpu, 'verify');
      c.record(form)(rec);
      const out = await rec.submitAndRead(c.args.out);
      const state = await new Recorder(gpu, 'verify').submitAndRead(c.args.state);
      for (const [what, got, ref] of [['out', out, want.o], ['state', state, want.state]] as const) {
        const rms = Math.sqrt(ref.reduce((a, b) => a + b * b, 0) / ref.length);
        for (let i = 0; i < ref.length; i++) {
          if (!(Math.abs(got[i] - ref[i]) <= 1e-4 * (rms + Math.abs(ref[i])))) throw new Error(`bench verify retention_${form} T ${VERIFY_T}: ${what}[${i}] is ${got[i]}, reference ${ref[i]}`);
        }
      }
    }
  } finally {
    c.dispose();
  }
}

export async function retentionSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  await verify(gpu);
  const lengths = [...new Set(opts.prompts ?? (opts.quick ? QUICK_LENGTHS : LENGTHS))].sort((a, b) => a - b);
  const rounds = opts.repeats ?? 2;
  // A software adapter takes a good part of a second a call even at 32 tokens: one call per submit, fewer submits.
  const software = gpu.report.software;
  const trials = opts.quick || software ? 3 : 5;
  console.log(`Retention at H ${H}, Dk ${DK}, Dv ${DV} (the ~130M RetNet's heads), f32, chunks of ${RETENTION_CHUNK}; the median of ${trials} submits (after a warm-up), the best of ${rounds} round${rounds > 1 ? 's' : ''} in which the forms take turns.\n`);
  const rows: Row[] = [];
  const secs = new Map<number, Record<Form, number>>();
  for (const T of lengths) {
    const c = tensors(gpu, T);
    try {
      // On a GPU a short call is mostly dispatch overhead: several per submit, as a prefill records a layer's worth.
      const perSubmit = software ? 1 : Math.max(1, Math.min(16, Math.round(512 / T)));
      const best: Record<Form, number> = { parallel: Infinity, chunkwise: Infinity };
      for (let r = 0; r < rounds; r++) {
        for (const form of FORMS) best[form] = Math.min(best[form], await timeGpu(gpu, c.record(form), { perSubmit, trials }));
      }
      secs.set(T, best);
      rows.push(logged({
        T,
        'parallel ms': best.parallel * 1000,
        'chunkwise ms': best.chunkwise * 1000,
        'parallel tokens/s': T / best.parallel,
        'chunkwise tokens/s': T / best.chunkwise,
        'parallel / chunkwise time': best.parallel / best.chunkwise,
        faster: best.chunkwise < best.parallel ? 'chunkwise' : 'parallel',
      }));
    } finally {
      c.dispose();
    }
  }
  console.log('');
  printTable(`retention, parallel vs chunkwise form (H ${H}, Dk ${DK}, Dv ${DV}, f32; ms per call)`, rows);

  // A single win below a loss is noise, not a crossover: chunkwise must win at every longer length.
  const wins = lengths.map((T) => secs.get(T)!.chunkwise < secs.get(T)!.parallel);
  const from = wins.lastIndexOf(false) + 1;
  const ms = (s: number) => (s >= 0.1 ? (s * 1000).toFixed(0) : (s * 1000).toPrecision(3));
  const cmp = (T: number) => `parallel ${ms(secs.get(T)!.parallel)} ms vs chunkwise ${ms(secs.get(T)!.chunkwise)} ms at ${T}`;
  const current = `RETNET_PARALLEL_MAX_T is ${RETNET_PARALLEL_MAX_T} (src/models/retnet/model.ts: the parallel form up to ${RETNET_PARALLEL_MAX_T} tokens)`;
  let agrees: boolean;
  if (from === lengths.length) {
    console.log(`Crossover: none; the parallel form is not beaten at the longest length timed (${cmp(lengths[lengths.length - 1])}).`);
    agrees = RETNET_PARALLEL_MAX_T >= lengths[lengths.length - 1];
  } else if (from === 0) {
    console.log(`Crossover: at or below ${lengths[0]}; the chunkwise form is faster at every length timed (${cmp(lengths[0])}).`);
    agrees = RETNET_PARALLEL_MAX_T < lengths[0];
  } else {
    console.log(`Crossover: the chunkwise form is faster from ${lengths[from]} tokens on (${cmp(lengths[from])}; ${cmp(lengths[from - 1])}): the parallel form up to somewhere in ${lengths[from - 1]}..${lengths[from] - 1}.`);
    agrees = RETNET_PARALLEL_MAX_T >= lengths[from - 1] && RETNET_PARALLEL_MAX_T < lengths[from];
  }
  console.log(`${current}: ${agrees ? 'consistent with' : 'NOT consistent with'} these figures${gpu.report.software ? ' (a software adapter: CPU figures)' : ''}.`);
}
