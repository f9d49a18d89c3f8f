// Shared WGSL snippets, named for defineKernel({ libs }).
import common from './common.wgsl?raw';

export const lib = { common } as const;
