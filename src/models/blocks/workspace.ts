// The scratch activations of a family's forward pass, for up to `chunk`
// tokens, allocated once with the model. Every family sizes its workspace
// through here, so the checks live once: each buffer must fit one binding
// (checked from the config before any weight is read), and allocation is all
// or nothing, so a buffer that cannot be made frees the ones made before it.

import type { Gpu } from '../../runtime/gpu';
import type { MemoryCategory } from '../../runtime/ledger';
import { DTYPE_BYTES, fmtShape, type DenseDType, type Tensor } from '../../runtime/tensor';
import { TesseraError } from '../../runtime/errors';

export interface BufferSpec {
  shape: readonly number[];
  /** Default: the device's activation type. */
  dtype?: DenseDType;
  /** Default: 'activations'. */
  category?: MemoryCategory;
}

export type Workspace<K extends string> = { readonly [key in K]: Tensor } & {
  /** Most tokens one prefill call takes. */
  readonly chunk: number;
  dispose(): void;
};

/** The prefill chunk a model runs with: the option, else 256, never above its context. */
export function prefillChunkOf(requested: number | undefined, maxContext = Infinity): number {
  const chunk = requested ?? 256;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`prefillChunk must be a positive integer, got ${requested}`);
  return Math.min(chunk, maxContext);
}

/** Throws, naming prefillChunk and the sizes, when a workspace buffer would not fit one binding of this device. */
export function checkWorkspace(gpu: Gpu, family: string, chunk: number, specs: Record<string, BufferSpec>): void {
  const limit = Math.min(gpu.maxBinding, gpu.device.limits.maxBufferSize);
  for (const [name, s] of Object.entries(specs)) {
    const bytes = s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype ?? gpu.activationType];
    if (bytes > limit) {
      throw new TesseraError('WILL_NOT_FIT', `prefillChunk ${chunk}: the ${family} workspace buffer '${name}' ${fmtShape(s.shape)} needs ${bytes} bytes, over this device's limit of ${limit} bytes per binding; pass a smaller prefillChunk`);
    }
  }
}

/** Allocates every buffer of `specs` (labelled `<family>.ws.<name>`), or none of them. */
export function allocateWorkspace<K extends string>(gpu: Gpu, family: string, chunk: number, specs: Record<K, BufferSpec>): Workspace<K> {
  checkWorkspace(gpu, family, chunk, specs);
  return gpu.allOrNothing(() => {
    const made = Object.entries<BufferSpec>(specs).map(([name, s]) => [name, gpu.empty(s.shape, s.dtype ?? gpu.activationType, `${family}.ws.${name}`, s.category ?? 'activations')] as const);
    const dispose = () => {
      for (const [, t] of made) t.dispose();
    };
    return Object.assign(Object.fromEntries(made) as Record<K, Tensor>, { chunk, dispose });
  });
}
