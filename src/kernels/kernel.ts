// defineKernel(): one WGSL op turned into cached pipelines, keyed by variant.
//
// A kernel's source is its .wgsl file, preceded by a prelude that fixes the
// element type T (f32, or f16 where the device has shader-f16), and the
// output type O (T, or f32 for a kernel that casts: the f16 path's last norm
// feeds the f32 LM head), and by the
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
  /** Its output binding is of type O and may be f32 where T is f16. */
  castsOutput?: boolean;
}

/** A variant's element types: T, and O when it differs (default T). */
export interface Types { type: ElementType; out?: ElementType }

/** Override constants of a variant, e.g. { WG: 256 }. */
export type Overrides = Readonly<Record<string, number>>;

export interface Kernel {
  readonly name: string;
  /** Whether its output may be f32 where T is f16 (KernelDef.castsOutput). */
  readonly castsOutput: boolean;
  /** The whole WGSL of a variant's module: prelude, snippets, then the op's own source. */
  code(types: Types): string;
  /** Which file a line of code(types) comes from, as 'attention_tile.wgsl:12' (the prelude is 'prelude:1'). */
  locate(types: Types, line: number): string;
  /** The key of a variant: name, element types, then overrides in sorted order. */
  key(types: Types, overrides?: Overrides): string;
  /** Records one dispatch of this kernel's variant. */
  dispatch(rec: Recorder, v: { type?: ElementType; out?: ElementType; overrides?: Overrides }, bindings: readonly Binding[], params: ArrayBuffer | null, groups: readonly number[]): void;
}

const prelude = ({ type, out = type }: Types) => `${type === 'f16' ? 'enable f16;\n' : ''}alias T = ${type};\nalias O = ${out};\n`;
const typesName = ({ type, out = type }: Types) => (out === type ? type : `${type}_to_${out}`);
const libName = (snippet: string) => `${Object.entries(lib).find(([, s]) => s === snippet)?.[0].replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) ?? 'lib'}.wgsl`;

/** Every kernel defined so far (each op's module defines its own on import): the compilation checks walk them. */
export const KERNELS: Kernel[] = [];

export function defineKernel(def: KernelDef): Kernel {
  const parts = (types: Types): [string, string][] => [['prelude', prelude(types)], ...(def.libs ?? []).map((s): [string, string] => [libName(s), s]), [`${def.name}.wgsl`, def.source]];
  const code = (types: Types) => parts(types).map(([, s]) => s).join('\n');
  const locate = (types: Types, line: number) => {
    let first = 1;
    for (const [file, s] of parts(types)) {
      const lines = s.split('\n').length;
      if (line < first + lines) return `${file}:${line - first + 1}`;
      first += lines;
    }
    return `line ${line}`;
  };
  const key = (types: Types, overrides: Overrides = {}) =>
    [def.name, typesName(types), ...Object.keys(overrides).sort().map((k) => `${k}${overrides[k]}`)].join('_');
  const kernel: Kernel = {
    name: def.name,
    castsOutput: def.castsOutput ?? false,
    code,
    locate,
    key,
    dispatch(rec, v, bindings, params, groups) {
      const types: Types = { type: v.type ?? 'f32', out: v.out ?? v.type ?? 'f32' };
      if (types.out !== types.type && !def.castsOutput) throw new Error(`${def.name}: its output must be of its input's type (${types.type}), got ${types.out}`);
      if ((types.type === 'f16' || types.out === 'f16') && !rec.gpu.report.features.shaderF16) throw new Error(`${def.name}: f16 needs the shader-f16 feature, which this adapter lacks`);
      const pipeline = rec.gpu.pipeline(key(types, v.overrides), `${def.name}_${typesName(types)}`, code(types), { ...v.overrides }, (line) => locate(types, line));
      rec.dispatch(def.name, pipeline, bindings, params, groups);
    },
  };
  KERNELS.push(kernel);
  return kernel;
}


/**
 * Threads of a workgroup that reduces one row of `dim` values (a norm): about
 * four values per thread, a power of two from 32 to 256. A short row in a
 * wide workgroup leaves most threads idle at every barrier of the reduction
 * (on a software adapter each barrier costs as much as the arithmetic).
 */
export function rowReductionWidth(dim: number): number {
  let wg = 32;
  while (wg < 256 && wg * 4 < dim) wg *= 2;
  return wg;
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
