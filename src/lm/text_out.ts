// Generated text on its way out of generate(): the tokenizer's stream
// decoder (pieces never split a character), then stop strings. Text that
// could still become the start of a stop string is held back until the next
// token decides it, so a stop string never reaches the caller, even when it
// spans several tokens.

import type { StreamDecoder, Tokenizer } from '../runtime/tokenizer';

export class TextOut {
  private decoder: StreamDecoder;
  private pending = '';
  stops: readonly string[] = [];

  constructor(private readonly tok: Tokenizer) {
    this.decoder = tok.streamDecoder();
  }

  /** The text `token` lets out now; `stopped` when a stop string appeared (the text is what came before it). */
  push(token: number): { text: string; stopped: boolean } {
    this.pending += this.decoder.push(token);
    const cut = this.stops.length ? firstStop(this.pending, this.stops) : -1;
    if (cut >= 0) {
      const text = this.pending.slice(0, cut);
      this.pending = '';
      return { text, stopped: true };
    }
    const safe = this.pending.length - longestStopPrefix(this.pending, this.stops);
    const text = this.pending.slice(0, safe);
    this.pending = this.pending.slice(safe);
    return { text, stopped: false };
  }

  /** Everything held back, as the text ends here (at the end, or before a continuation's prompt); starts afresh. */
  flush(): string {
    const text = this.pending + this.decoder.flush();
    this.decoder = this.tok.streamDecoder();
    this.pending = '';
    return text;
  }
}

function firstStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
function longestStopPrefix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
