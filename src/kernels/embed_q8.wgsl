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
// Needs: common.wgsl

struct Params { tokens: u32, dim: u32, vocab: u32, first: u32, total: u32, group: u32, nan: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let words = p.dim / 4u; // code words per row
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.tokens * words) { return; }
  let t = i / words;
  let w = i % words;
  let id = ids[t] - p.first; // wraps above vocab for ids below first
  let o = t * p.dim + w * 4u;
  if (id >= p.vocab) {
    // Only the last part writes the NaN rows, so that parts do not overwrite each other's rows.
    if (ids[t] >= p.total && p.first + p.vocab == p.total) {
      for (var j = 0u; j < 4u; j++) { out[o + j] = T(p.nan); }
    }
    return;
  }
  let groups = (p.dim + p.group - 1u) / p.group;
  let dm = unpack2x16float(scales[id * groups + (w * 4u) / p.group]); // (d, m)
  let q = codes[id * words + w];
  for (var j = 0u; j < 4u; j++) {
    out[o + j] = T(dm.y + f32((q >> (8u * j)) & 0xffu) * dm.x);
  }
}
