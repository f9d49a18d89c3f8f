// Saved conversations, named by id. A snapshot's device copy stays with the
// handle that made it; the caller holds { id, position, bytes, dispose }, a
// plain value that can cross a message boundary (the worker engine sends the
// id back to restore it). Disposing the handle frees every snapshot it made.

import { TesseraError } from '../runtime/errors';
import type { ModelState } from '../models/model';

/** A copy of a conversation's state, from saveState(); dispose() frees its device memory. */
export interface StateSnapshot {
  /** Names the snapshot to restoreState() (it may be given the id alone). */
  readonly id: string;
  /** Tokens the conversation had seen. */
  readonly position: number;
  /** Device bytes the copy holds. */
  readonly bytes: number;
  dispose(): void;
}

let made = 0;

export class SnapshotStore<Extra> {
  private readonly saved = new Map<string, { state: ModelState; extra: Extra }>();

  /** Keeps `state` (now owned by the store) with what the handle needs beside it. */
  add(state: ModelState, extra: Extra): StateSnapshot {
    const id = `snapshot-${++made}`;
    this.saved.set(id, { state, extra });
    return { id, position: state.position, bytes: state.bytes, dispose: () => this.drop(id) };
  }

  /** The saved state of a snapshot or its id; an Error coded SNAPSHOT when it is not one of this store's. */
  get(op: string, snapshot: StateSnapshot | string): { state: ModelState; extra: Extra } {
    const id = typeof snapshot === 'string' ? snapshot : typeof snapshot === 'object' && snapshot !== null ? (snapshot as StateSnapshot).id : undefined;
    if (typeof id !== 'string') throw new TesseraError('SNAPSHOT', `${op}: expected a snapshot from saveState() or its id, got ${snapshot === null ? 'null' : typeof snapshot}`);
    const entry = this.saved.get(id);
    if (!entry) throw new TesseraError('SNAPSHOT', `${op}: snapshot '${id}' is not one of this model's: it was disposed, or another model made it`);
    return entry;
  }

  /** Frees one snapshot (nothing if already freed). */
  drop(id: string): void {
    this.saved.get(id)?.state.dispose();
    this.saved.delete(id);
  }

  dropAll(): void {
    for (const id of [...this.saved.keys()]) this.drop(id);
  }
}
