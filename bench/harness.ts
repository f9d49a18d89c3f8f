// Timing and reporting shared by the benchmark suites. Speed is measured here,
// never in tests. Every suite verifies its results against the float64
// reference before it times anything.

import type { Gpu } from '../src/runtime/gpu';
import { Recorder } from '../src/runtime/recorder';
import type { LanguageModel } from '../src/models/model';
import type { TensorSource } from '../src/models/loader/weights';

export interface BenchOptions {
  quick: boolean;
  /** Overrides of a model suite's sizes (--layers, --prompts, --contexts). */
  layers?: number;
  prompts?: number[];
  contexts?: number[];
  /** Timed runs per figure, the best kept (default 2; 1 on software adapters, where a run is slow). */
  repeats?: number;
  /** Kernel suite: also time the matvec at a range of tunings (--sweep), or at these (--sweep=64x1,64x8: WG x TPR). */
  sweep?: boolean | { WG: number; TPR: number }[];
  /** Model suites: a smaller vocabulary than the preset's (--vocab; a quick check of the suite itself). */
  vocab?: number;
  /** Compare suite: the preset (--preset 135m|tiny), the architectures (--archs), the folder for its reports (--out). */
  preset?: string;
  archs?: string[];
  out?: string;
  /** Compare suite: also time each kernel of one prefill and one decode step (--profile). */
  profile?: boolean;
  /** Compare suite: onnxruntime-web's execution providers to run beside Tessera (--peer webgpu,wasm|none). */
  peer?: string[];
}

/** Best (smallest) of `n` runs of an async timing. */
export async function bestOf(n: number, run: () => Promise<number>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, await run());
  return best;
}

/** One row of a results table. */
export type Row = Record<string, string | number>;

/**
 * Median seconds per repetition of `record` (which records `perSubmit`
 * repetitions into one recorder), after warm-up, over `trials` submits.
 * Waiting on onSubmittedWorkDone keeps readback out of the timing.
 */
export async function timeGpu(gpu: Gpu, record: (rec: Recorder, i: number) => void, opts: { perSubmit: number; trials: number }): Promise<number> {
  const runOnce = async () => {
    const rec = new Recorder(gpu, 'bench');
    for (let i = 0; i < opts.perSubmit; i++) record(rec, i);
    const t0 = performance.now();
    await rec.submit();
    await gpu.device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000 / opts.perSubmit;
  };
  await runOnce(); // warm-up: pipeline compilation, first-touch of buffers
  const times: number[] = [];
  for (let t = 0; t < opts.trials; t++) times.push(await runOnce());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Prints a measured row at once and returns it (a long run keeps what it measured if a later case fails). */
export function logged(row: Row): Row {
  console.log(`  ${Object.entries(row).map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`).join(', ')}`);
  return row;
}

/** Where tables go besides the terminal (run.ts's --json file), as each is made. */
let tableSink: ((title: string, rows: Row[]) => void) | null = null;
export function setTableSink(sink: (title: string, rows: Row[]) => void): void {
  tableSink = sink;
}

export function printTable(title: string, rows: Row[]): string {
  if (rows.length === 0) return '';
  tableSink?.(title, rows);
  const cols = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? fmt(v) : v);
  const lines = [`### ${title}`, '', `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`)];
  const text = lines.join('\n');
  console.log(text + '\n');
  return text;
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export const GB = 1e9;

/**
 * Prefills `ids` into a fresh state of `model` and checks the last position's
 * logits against the reference's (verifyLogits); the model is disposed either way.
 */
export async function verifyPrefill(name: string, model: LanguageModel, ids: Int32Array, reference: () => ArrayLike<number>): Promise<void> {
  const state = model.createState();
  try {
    const rec = new Recorder(model.gpu, 'verify');
    verifyLogits(name, (await rec.submitAndRead(model.prefill(rec, state, ids))) as Float32Array, reference());
  } finally {
    state.dispose();
    model.dispose();
  }
}

/**
 * Stops a suite whose model disagrees with the float64 reference: max |got - want|
 * within 1e-4 of max |want| (the scale of the logits), as the model tests check.
 */
export function verifyLogits(name: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-4 * scale)) throw new Error(`bench verify ${name}: logit ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

/** A checkpoint of random weights served one tensor at a time; `dense` keeps them for the reference when asked. */
export type RandomSource = TensorSource & { dense: Map<string, Float32Array> | null };

/**
 * Random weights served through the loader like a checkpoint: `init` makes
 * each tensor from a seeded uniform draw in [-1, 1); tiny verification models
 * (`keep`) also keep their weights for the float64 reference.
 */
export function randomWeights(shapes: Map<string, number[]>, seed: number, keep: boolean, init: (name: string, shape: number[], rnd: () => number) => Float32Array): RandomSource {
  const dense = keep ? new Map<string, Float32Array>() : null;
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  return {
    names: [...shapes.keys()],
    dense,
    info: (n) => ({ dtype: 'F32', shape: shapes.get(n)!, byteLength: shapes.get(n)!.reduce((a, b) => a * b, 4) }),
    async readF32(n) {
      const w = init(n, shapes.get(n)!, rnd);
      dense?.set(n, w);
      return w;
    },
  };
}
