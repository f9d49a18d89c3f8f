// Shared WGSL snippets, named for defineKernel({ libs }).
import common from './common.wgsl?raw';
import random from './random.wgsl?raw';
import activations from './activations.wgsl?raw';
import matvecQuant from './matvec_quant.wgsl?raw';
import matmulTile from './matmul_tile.wgsl?raw';
import matmulQuant from './matmul_quant.wgsl?raw';
import embedQuant from './embed_quant.wgsl?raw';
import attentionTile from './attention_tile.wgsl?raw';
import preciseLog2 from './precise_log2.wgsl?raw';
import q4Rows from './q4_rows.wgsl?raw';

export const lib = { common, random, activations, matvecQuant, matmulTile, matmulQuant, embedQuant, attentionTile, preciseLog2, q4Rows } as const;
