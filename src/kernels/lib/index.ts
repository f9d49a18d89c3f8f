// Shared WGSL snippets, named for defineKernel({ libs }).
import common from './common.wgsl?raw';
import random from './random.wgsl?raw';

export const lib = { common, random } as const;
