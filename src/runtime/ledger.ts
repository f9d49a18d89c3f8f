// The memory ledger: every GPU buffer the runtime creates is counted here by
// category, so a benchmark can report device memory exactly and a test can
// check that disposing a model brings the count back to where it was.

/** 'experts': the expert weights of a mixture of experts, apart from the rest of the weights. */
export type MemoryCategory = 'weights' | 'experts' | 'cache' | 'activations' | 'scratch';
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = ['weights', 'experts', 'cache', 'activations', 'scratch'];

export interface MemoryReport {
  /** Bytes alive now, per category. */
  bytes: Record<MemoryCategory, number>;
  /** Highest bytes alive per category since creation or the last resetPeak(). */
  peak: Record<MemoryCategory, number>;
  /** Bytes alive now, all categories. */
  total: number;
  /** Highest total alive at any moment (not the sum of per-category peaks). */
  peakTotal: number;
  /** Number of live buffers. */
  buffers: number;
}

interface Entry { label: string; bytes: number; category: MemoryCategory }

const zeros = (): Record<MemoryCategory, number> => ({ weights: 0, experts: 0, cache: 0, activations: 0, scratch: 0 });

export class MemoryLedger {
  private readonly live = new Map<object, Entry>();
  private readonly bytes = zeros();
  private peak = zeros();
  private total = 0;
  private peakTotal = 0;

  /** Counts a new buffer; `key` is the object that owns it (one entry per key). */
  add(key: object, label: string, bytes: number, category: MemoryCategory): void {
    if (this.live.has(key)) throw new Error(`memory ledger: '${label}' is already counted`);
    this.live.set(key, { label, bytes, category });
    this.bytes[category] += bytes;
    this.total += bytes;
    this.peak[category] = Math.max(this.peak[category], this.bytes[category]);
    this.peakTotal = Math.max(this.peakTotal, this.total);
  }

  /** Uncounts a buffer; removing one that is not counted is a bug and throws. */
  remove(key: object): void {
    const entry = this.live.get(key);
    if (!entry) throw new Error('memory ledger: removing a buffer that is not counted');
    this.live.delete(key);
    this.bytes[entry.category] -= entry.bytes;
    this.total -= entry.bytes;
  }

  report(): MemoryReport {
    return { bytes: { ...this.bytes }, peak: { ...this.peak }, total: this.total, peakTotal: this.peakTotal, buffers: this.live.size };
  }

  /** Starts peak tracking afresh from what is alive now (e.g. before a benchmark case). */
  resetPeak(): void {
    this.peak = { ...this.bytes };
    this.peakTotal = this.total;
  }

  /** Labels and sizes of live buffers, largest first: what a leak report prints. */
  liveBuffers(): { label: string; bytes: number; category: MemoryCategory }[] {
    return [...this.live.values()].sort((a, b) => b.bytes - a.bytes);
  }
}
