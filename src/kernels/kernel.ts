// defineKernel(): one WGSL op turned into cached pipelines, keyed by variant.
//
// A kernel's source is its .wgsl file, preceded by a prelude that fixes the
// element type T (f32, or f16 where the device has shader-f16) and by the
// shared snippets it names from lib/. Tuning knobs are WGSL `override`
// constants. The pipeline key and GPU label are derived from the variant
// (`rmsnorm_f32_WG256`), so they cannot drift from the code. Sizes that
// change per call never enter the key: they go in the uniform Params.

import type { Binding, Recorder } from '../runtime/recorder';
import { lib } from './lib';

export type ElementType = 'f32' | 'f16';

export interface KernelDef {
  /** Op name: the file name, pipeline key prefix, GPU label, test and bench case. */
  name: string;
  /** The op's WGSL (imported with `?raw`). */
  source: string;
  /** Shared snippets from lib/ the op needs, prepended in order. */
  libs?: readonly string[];
}

/** Override constants of a variant, e.g. { WG: 256 }. */
export type Overrides = Readonly<Record<string, number>>;

export interface Kernel {
  readonly name: string;
  /** The whole WGSL of a variant's module: prelude, snippets, then the op's own source. */
  code(type: ElementType): string;
  /** Which file a line of code(type) comes from, as 'attention_tile.wgsl:12' (the prelude is 'prelude:1'). */
  locate(type: ElementType, line: number): string;
  /** The key of a variant: name, element type, then overrides in sorted order. */
  key(type: ElementType, overrides?: Overrides): string;
  /** Records one dispatch of this kernel's variant. */
  dispatch(rec: Recorder, v: { type?: ElementType; overrides?: Overrides }, bindings: readonly Binding[], params: ArrayBuffer | null, groups: readonly number[]): void;
}

const prelude = (type: ElementType) => (type === 'f16' ? 'enable f16;\nalias T = f16;\n' : 'alias T = f32;\n');
const libName = (snippet: string) => `${Object.entries(lib).find(([, s]) => s === snippet)?.[0].replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) ?? 'lib'}.wgsl`;

/** Every kernel defined so far (each op's module defines its own on import): the compilation checks walk them. */
export const KERNELS: Kernel[] = [];

export function defineKernel(def: KernelDef): Kernel {
  const parts = (type: ElementType): [string, string][] => [['prelude', prelude(type)], ...(def.libs ?? []).map((s): [string, string] => [libName(s), s]), [`${def.name}.wgsl`, def.source]];
  const code = (type: ElementType) => parts(type).map(([, s]) => s).join('\n');
  const locate = (type: ElementType, line: number) => {
    let first = 1;
    for (const [file, s] of parts(type)) {
      const lines = s.split('\n').length;
      if (line < first + lines) return `${file}:${line - first + 1}`;
      first += lines;
    }
    return `line ${line}`;
  };
  const key = (type: ElementType, overrides: Overrides = {}) =>
    [def.name, type, ...Object.keys(overrides).sort().map((k) => `${k}${overrides[k]}`)].join('_');
  const kernel: Kernel = {
    name: def.name,
    code,
    locate,
    key,
    dispatch(rec, v, bindings, params, groups) {
      const type = v.type ?? 'f32';
      if (type === 'f16' && !rec.gpu.report.features.shaderF16) throw new Error(`${def.name}: f16 needs the shader-f16 feature, which this adapter lacks`);
      const pipeline = rec.gpu.pipeline(key(type, v.overrides), `${def.name}_${type}`, code(type), { ...v.overrides }, (line) => locate(type, line));
      rec.dispatch(def.name, pipeline, bindings, params, groups);
    },
  };
  KERNELS.push(kernel);
  return kernel;
}


/**
 * Splits a count of workgroups over x and y when it exceeds the per-dimension
 * limit (65535 by default); kernels recover the index with `group_index` (lib/common.wgsl).
 */
export function grid(groups: number, maxPerDim = 65535): [number, number] {
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}
