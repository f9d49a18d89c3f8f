// Shared WGSL snippets, named for defineKernel({ libs }).
import common from './common.wgsl?raw';
import random from './random.wgsl?raw';
import activations from './activations.wgsl?raw';

export const lib = { common, random, activations } as const;
