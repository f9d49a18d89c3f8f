// What the benchmark suites share: their options, a kernel's GPU time
// (timeGpu), a copy's bandwidth (copyBandwidth), and their tables, printed and handed to run.ts's --json file.
// Speed is measured in the suites, never in tests. A kernel suite checks its
// kernels against the float64 reference before it times them; the model
// suites time models through the public contract, which the model tests
// check against the references (the models' timings are compare/timing.ts).

import type { Gpu } from '../src/runtime/gpu';
import { Recorder } from '../src/runtime/recorder';
import { copy } from '../src/kernels/copy';

export interface BenchOptions {
  quick: boolean;
  /** Overrides of a suite's sizes (--layers, --prompts, --contexts; the retention suite's lengths are --prompts). */
  layers?: number;
  /** Compare suite: cut each preset to this fraction of its layers instead (--depth 1/6). */
  depth?: number;
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
  /** Compare suite: the peer columns to run beside Tessera (--peer webgpu,wasm,transformers-webgpu,transformers-wasm,transformers-cpu|none). */
  peer?: string[];
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

/** Bytes per second (read + written) of the copy kernel over a buffer far larger than any cache: the decode roofline's yardstick. */
export async function copyBandwidth(gpu: Gpu, repeats: number): Promise<number> {
  const bytes = Math.min(64 << 20, Math.floor(gpu.maxBinding / 16) * 16);
  const src = gpu.empty([bytes / 4], 'u32', 'bench.copy.src', 'scratch');
  const dst = gpu.empty([bytes / 4], 'u32', 'bench.copy.dst', 'scratch');
  try {
    return (2 * bytes) / (await timeGpu(gpu, (r) => copy(r, src, dst), { perSubmit: 1, trials: Math.max(3, repeats) }));
  } finally {
    src.dispose();
    dst.dispose();
  }
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
