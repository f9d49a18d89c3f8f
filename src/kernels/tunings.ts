// Kernel tunings per class of adapter, kept as data: the figure that chose
// each one and the adapter it was measured on sit beside it. A GPU run of the
// kit (scripts/gpu-check.sh: `--suite kernels --sweep`) prints the best
// tuning per layer; copy it here with its adapter, and the kernel takes it on
// every adapter of that class.

import type { DeviceReport } from '../runtime/device';

/** Which tuning an adapter gets: its vendor's where one was measured, else the general GPU one; CPUs apart. */
export type AdapterClass = 'software' | 'nvidia' | 'amd' | 'intel' | 'apple' | 'gpu';

export function adapterClass(report: Pick<DeviceReport, 'adapter' | 'software'>): AdapterClass {
  if (report.software) return 'software';
  const name = report.adapter.toLowerCase();
  for (const vendor of ['nvidia', 'amd', 'intel', 'apple'] as const) if (name.includes(vendor)) return vendor;
  return /radeon|ati\b/.test(name) ? 'amd' : 'gpu';
}

/** A tuning for a class of adapter, with where it comes from. */
export interface Measured<T> {
  tuning: T;
  /** The adapter and the figures that chose it, or why it is a guess. */
  source: string;
}

/** A tuning per adapter class: a general GPU one and a software one at least. */
export type TuningTable<T> = Partial<Record<AdapterClass, Measured<T>>> & { gpu: Measured<T>; software: Measured<T> };

/** The adapter's entry of a table: its class's where one was measured, else the general GPU one. */
function tuningFor<T>(table: TuningTable<T>, report: Pick<DeviceReport, 'adapter' | 'software'>): T {
  return (table[adapterClass(report)] ?? table.gpu).tuning;
}

/** Threads per workgroup and lanes per team of 4 rows of matvec_q4 and matvec_q8 (lib/matvec_quant.wgsl). */
export interface MatvecTuning { WG: number; TPR: number }

export const MATVEC_TUNINGS: TuningTable<MatvecTuning> = {
  // 8 lanes per team read 128 consecutive bytes of each of its 4 rows per step;
  // 32 rows per workgroup spread a 1536-row layer over 48 workgroups.
  gpu: { tuning: { WG: 64, TPR: 8 }, source: 'not measured: chosen by reasoning, no GPU has run the sweep yet' },
  // A thread per 4 rows, no barrier (any TPR > 1 is 2-10x slower there).
  // Weight bandwidth / copy bandwidth, G 32, best of 3-4 rounds: 0.38 at
  // 1536×576, 0.36 at 576×1536, 0.33 at 8192×576 (a thread per row and a
  // shift per code gave 0.13 / 0.14 / 0.10; 8 rows per thread 0.28-0.36).
  software: { tuning: { WG: 64, TPR: 1 }, source: 'SwiftShader 5.0.0 through Dawn, 2-core x86-64 CPU, 2026-11' },
};

/** The matvec tuning for this adapter. */
export function matvecTuning(report: Pick<DeviceReport, 'adapter' | 'software'>): MatvecTuning {
  return tuningFor(MATVEC_TUNINGS, report);
}

/** The kernel of a 4-bit matmul over several tokens: 'tiled' (matmul_q4, workgroup memory and barriers) or 'rows' (matmul_q4_rows, registers only). */
export type PrefillMatmul = 'tiled' | 'rows';

export const PREFILL_MATMUL: TuningTable<PrefillMatmul> = {
  // Tiles reuse each staged weight and x value across 64 tokens and rows, what GPUs are built for.
  gpu: { tuning: 'tiled', source: 'not measured: chosen by reasoning, no GPU has run the sweep yet' },
  software: { tuning: 'rows', source: 'SwiftShader 5.0.0 through Dawn, 2-core x86-64 CPU, 2026-12: see bench/RESULTS.md' },
};

/** The prefill matmul kernel for this adapter. */
export function prefillMatmul(report: Pick<DeviceReport, 'adapter' | 'software'>): PrefillMatmul {
  return tuningFor(PREFILL_MATMUL, report);
}

/** How a row norm is reduced: by a workgroup per row ('workgroup', in workgroup memory) or by a thread per row ('thread', no barrier). */
export type NormLayout = 'workgroup' | 'thread';

export const NORM_LAYOUT: TuningTable<NormLayout> = {
  gpu: { tuning: 'workgroup', source: 'not measured: chosen by reasoning (coalesced reads, many rows in flight)' },
  software: { tuning: 'thread', source: 'SwiftShader 5.0.0 through Dawn, 2-core x86-64 CPU, 2026-12: see bench/RESULTS.md' },
};

/** The norm layout for this adapter. */
export function normLayout(report: Pick<DeviceReport, 'adapter' | 'software'>): NormLayout {
  return tuningFor(NORM_LAYOUT, report);
}

/**
 * How attention reduces its keys: through workgroup memory, a workgroup per
 * tile ('workgroup': attn_decode.wgsl's chunks, attn_prefill.wgsl's tiles), or
 * by threads with no barrier ('thread': attn_decode_threads.ts,
 * attn_prefill_threads.wgsl).
 */
export type AttentionForm = 'workgroup' | 'thread';

export const ATTENTION_FORM: TuningTable<AttentionForm> = {
  gpu: { tuning: 'workgroup', source: 'not measured: chosen by reasoning (each key and value row read once per group of query heads)' },
  software: { tuning: 'thread', source: 'SwiftShader 5.0.0 through Dawn, 2-core x86-64 CPU, 2026-12: see bench/RESULTS.md' },
};

/** The attention form for this adapter (decode and prefill). */
export function attentionForm(report: Pick<DeviceReport, 'adapter' | 'software'>): AttentionForm {
  return tuningFor(ATTENTION_FORM, report);
}
