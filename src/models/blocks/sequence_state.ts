// The bookkeeping every family's per-sequence state shares: how many tokens
// it holds, and the room it has left (a KV cache is bounded by the capacity
// it was made with; a recurrent state is not). A family's state extends this
// with its buffers.

import type { ModelState } from '../model';
import type { Tensor } from '../../runtime/tensor';
import { TesseraError } from '../../runtime/errors';

export abstract class SequenceState implements ModelState {
  private pos = 0;

  /** `capacity`: most tokens it holds, or null for a state that does not grow. */
  constructor(readonly capacity: number | null) {}

  /** Every buffer the state owns: for bytes and dispose(). */
  protected abstract get buffers(): readonly Tensor[];

  get position(): number {
    return this.pos;
  }

  get bytes(): number {
    return this.buffers.reduce((s, t) => s + t.byteLength, 0);
  }

  /** Throws the context-overflow Error if `n` more tokens do not fit. */
  checkRoom(n: number): void {
    if (this.capacity !== null && this.pos + n > this.capacity) {
      throw new TesseraError('CONTEXT_OVERFLOW', `context overflow: ${this.pos} tokens so far + ${n} new would exceed this state's capacity of ${this.capacity} tokens (raise maxContext, or reset())`);
    }
  }

  /** Marks `n` more tokens as consumed (after checkRoom). */
  advance(n: number): void {
    this.pos += n;
  }

  /** See ModelState.skip: the position moves on, the buffers are left as they are. */
  skip(n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) throw new Error(`skip: ${n} is not a whole number of tokens`);
    this.checkRoom(n);
    this.advance(n);
  }

  /** Sets the position, after a copy of another state's contents into this one. */
  setPosition(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && (this.capacity === null || n <= this.capacity))) throw new Error(`setPosition: ${n} is outside 0..${this.capacity ?? 'any'}`);
    this.pos = n;
  }

  /** Back to position 0; a recurrent state also clears its contents (clear()). */
  reset(): void {
    this.pos = 0;
    this.clear();
  }

  /** What reset() does to the buffers: nothing for a KV cache (later tokens overwrite it), zeros for a recurrent state. */
  protected clear(): void {}

  dispose(): void {
    for (const t of this.buffers) t.dispose();
  }
}
