// embed_q8: out[t, :] = dequantized row ids[t] of an 8-bit table, or a row of
// NaN when ids[t] is not in [0, V) (see embed.wgsl for why NaN and why u32,
// and for tables that are one row part [first, first + vocab) of `total`).
// Format (src/runtime/q8.ts): value k of row n is m + q * d, with q the 8-bit
// code at bits 8(k%4) of word n*D/4 + k/4 and (d, m) = unpack2x16float of the
// scale word of group k/G.
// codes: (V, D/4) u32; scales: (V, ceil(D/G)) u32, two ranges of one buffer;
// ids: (T) i32 or u32, read as u32; out: (T, D).
// One invocation per code word: 4 consecutive outputs of one group (G is a
// multiple of 4).
// Needs: common.wgsl, embed_quant.wgsl (the entry point, shared with embed_q4)

struct Params { tokens: u32, dim: u32, vocab: u32, first: u32, total: u32, group: u32, nan: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

override WG: u32 = 256;

const WORD_CODES = 4u; // 8-bit codes per u32
fn code(q: u32, j: u32) -> u32 { return (q >> (8u * j)) & 0xffu; }
