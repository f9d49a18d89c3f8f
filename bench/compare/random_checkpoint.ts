// A checkpoint of random weights, served through the public loader like one
// on disk: config.json, and a model.safetensors whose header lists the
// tensors the config implies (registry.checkpointTensorShapes) and whose
// bytes are computed when read. A value depends only on the seed, the
// tensor's name and its index (a counter-based hash), so any byte range is
// made on its own, and a 500 MB checkpoint never sits in memory.

import { checkpointTensorShapes } from '../../src/models/registry';
import type { CheckpointSource } from '../../src/models/loader/source';

/** How a tensor's values are made: value(i) from u(i), a uniform draw in [-1, 1). */
export type Init = (name: string, shape: readonly number[]) => (u: number, i: number) => number;

/** Matrices u / sqrt(fan-in) (the last dimension), vectors 1 + 0.1 u: activations of order 1 through any depth. */
export const defaultInit: Init = (_name, shape) => {
  if (shape.length === 1) return (u) => 1 + 0.1 * u;
  const scale = 1 / Math.sqrt(shape[shape.length - 1]);
  return (u) => u * scale;
};

/** murmur3's finaliser over (seed, tensor, index): a uniform draw in [-1, 1). */
function draw(seed: number, tensor: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(tensor + 1, 0xc2b2ae35) ^ i;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 31 - 1;
}

export function randomCheckpoint(config: Record<string, unknown>, seed: number, init: Init = defaultInit): CheckpointSource {
  const shapes = checkpointTensorShapes(config);
  const tensors = [...shapes].map(([name, shape], index) => ({ name, shape, index, value: init(name, shape), numel: shape.reduce((a, b) => a * b, 1), start: 0 }));
  let offset = 0;
  const header: Record<string, unknown> = {};
  for (const t of tensors) {
    t.start = offset;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.numel * 4] };
    offset += t.numel * 4;
  }
  const json = new TextEncoder().encode(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(json, 8);
  const dataStart = head.length;
  const files: Record<string, number> = { 'config.json': 0, 'model.safetensors': dataStart + offset };
  const configText = JSON.stringify(config);
  files['config.json'] = new TextEncoder().encode(configText).length;
  const describe = `random ${String(config.model_type)} checkpoint (seed ${seed})`;
  const missing = (name: string) => new Error(`file "${name}" not found in ${describe}`);

  /** Bytes [start, end) of model.safetensors. */
  const bytes = (start: number, end: number): Uint8Array => {
    const out = new Uint8Array(end - start);
    if (start < dataStart) out.set(head.subarray(start, Math.min(end, dataStart)), 0);
    const from = Math.max(start, dataStart) - dataStart;
    const to = end - dataStart;
    if (to <= from) return out;
    // Whole f32 values covering [from, to), then the bytes asked for.
    const first = Math.floor(from / 4);
    const values = new Float32Array(Math.ceil(to / 4) - first);
    for (const t of tensors) {
      const a = Math.max(first, t.start / 4);
      const b = Math.min(first + values.length, t.start / 4 + t.numel);
      for (let k = a; k < b; k++) {
        const i = k - t.start / 4;
        values[k - first] = t.value(draw(seed, t.index, i), i);
      }
    }
    out.set(new Uint8Array(values.buffer, from - first * 4, to - from), Math.max(start, dataStart) - start);
    return out;
  };

  return {
    describe,
    list: async () => Object.keys(files).sort(),
    has: async (name) => name in files,
    size: async (name) => {
      if (!(name in files)) throw missing(name);
      return files[name];
    },
    read: async (name, start, end) => {
      if (name === 'config.json') return new TextEncoder().encode(configText).slice(start, end);
      if (name !== 'model.safetensors') throw missing(name);
      return bytes(start, end);
    },
    text: async (name) => {
      if (name !== 'config.json') throw missing(name);
      return configText;
    },
  };
}
