// What every family's model shares, so that a family is its glossary, its
// config, its weight names, its state and its forward pass: the workspace and
// LM head, allocated all or nothing; the info it reports; the checks before a
// prefill records anything; decode as a one-token prefill; the liveness
// checks; and dispose(), which frees the workspace, the head and the weights.

import type { Gpu } from '../runtime/gpu';
import type { Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { LmHead } from './blocks/lm_head';
import type { VocabMatrix } from './blocks/vocab';
import type { SequenceState } from './blocks/sequence_state';
import { allocateWorkspace, type BufferSpec, type Workspace } from './blocks/workspace';
import { activationInfo, checkDecodeToken, checkPrefillTokens, type LanguageModel, type ModelInfo } from './model';

/** What a family says about itself; the rest of ModelInfo is measured from its weights and device. */
export type FamilyInfo = Pick<ModelInfo, 'family' | 'ffn' | 'modelType' | 'vocabSize' | 'nLayers' | 'dModel' | 'maxContext' | 'params'>;

export interface ModelParts<K extends string> {
  info: FamilyInfo;
  /** Every weight tensor, freed by dispose(). */
  weights: readonly Tensor[];
  /** A layer's linear weight: its dtype is the info's weight format. */
  layerWeight: Tensor;
  embed: VocabMatrix;
  lmHead: VocabMatrix;
  /** The final norm's weight (D) f32, and its eps. */
  norm: Tensor;
  eps: number;
  /** The workspace for `chunk` tokens; it must hold `ids` (C) i32 for the token ids. */
  workspace: Record<K | 'ids', BufferSpec>;
  chunk: number;
}

export abstract class BaseModel<S extends SequenceState, K extends string> implements LanguageModel<S> {
  readonly info: ModelInfo;
  protected readonly ws: Workspace<K | 'ids'>;
  protected readonly embed: VocabMatrix;
  private readonly head: LmHead;
  private readonly weights: readonly Tensor[];
  private disposed = false;

  constructor(readonly gpu: Gpu, parts: ModelParts<K>) {
    const family = parts.info.family;
    this.info = {
      ...parts.info,
      weightBytes: parts.weights.reduce((s, t) => s + t.byteLength, 0),
      weights: parts.layerWeight.dtype === 'q4' ? 'q4' : 'f32',
      embeddings: parts.embed.dtype === 'q4' || parts.embed.dtype === 'q8' ? parts.embed.dtype : 'f32',
      ...activationInfo(gpu),
    };
    this.embed = parts.embed;
    this.weights = parts.weights;
    // Allocated last, all or nothing: nothing above may throw once device memory is taken.
    [this.ws, this.head] = gpu.allOrNothing(() => {
      const ws = allocateWorkspace(gpu, family, parts.chunk, parts.workspace);
      return [ws, new LmHead(gpu, parts.norm, parts.lmHead, parts.eps, parts.chunk, family)] as const;
    });
  }

  /** Most tokens one prefill() call accepts. */
  get prefillChunk(): number {
    return this.ws.chunk;
  }

  get logitsRows(): number {
    return this.head.allRows;
  }

  createState(opts: { maxTokens?: number } = {}): S {
    this.assertLive('createState');
    return this.newState(opts);
  }

  decode(rec: Recorder, state: S, token: number): Tensor {
    checkDecodeToken(token, this.info.vocabSize);
    return this.prefill(rec, state, Int32Array.of(token));
  }

  /** Records the forward pass of `tokens` (at most prefillChunk) after the state's position, updating the state. */
  prefill(rec: Recorder, state: S, tokens: Int32Array, opts: { logits: 'last' | 'all' } = { logits: 'last' }): Tensor {
    this.assertLive('prefill');
    const T = tokens.length;
    checkPrefillTokens(tokens, this.ws.chunk, this.info.vocabSize);
    state.checkRoom(T);
    rec.write(this.ws.ids.view([T]), tokens);
    const { x, scratch } = this.forward(rec, state, this.ws.ids.view([T]));
    state.advance(T);
    return this.head.forward(rec, x, scratch, opts.logits);
  }

  copyState(rec: Recorder, from: S, to: S): void {
    this.assertLive('copyState');
    this.copyContents(rec, from, to);
    to.setPosition(from.position);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ws.dispose();
    this.head.dispose();
    for (const t of this.weights) t.dispose();
  }

  /** A fresh state (maxTokens as given to createState). */
  protected abstract newState(opts: { maxTokens?: number }): S;

  /**
   * Records the layers for the T token ids in `ids` (T) from the state at its
   * position (not yet advanced): returns the final hidden states x (T, D) and
   * a (T, D) buffer of the activation type the head may use.
   */
  protected abstract forward(rec: Recorder, state: S, ids: Tensor): { x: Tensor; scratch: Tensor };

  /** Records a copy of what `from` holds into `to` (the base sets the position). */
  protected abstract copyContents(rec: Recorder, from: S, to: S): void;

  /** The workspace by name, for a block that brings its own buffers (the feed-forward's). */
  protected get scratch(): Readonly<Record<string, Tensor>> {
    return this.ws as unknown as Record<string, Tensor>;
  }

  protected assertLive(op: string): void {
    if (this.disposed) throw new Error(`${op}: the model was disposed`);
  }
}
