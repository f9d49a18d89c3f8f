// embed_q4: out[t, :] = dequantized row ids[t] of a 4-bit table, or a row of
// NaN when ids[t] is not in [0, V) (see embed.wgsl for why NaN and why u32,
// and for tables that are one row part [first, first + vocab) of `total`).
// Format (src/runtime/q4.ts): value k of row n is m + q * d, with q the 4-bit
// code at bits 4(k%8) of word n*D/8 + k/8 and (d, m) = unpack2x16float of the
// scale word of group k/G.
// codes: (V, D/8) u32; scales: (V, ceil(D/G)) u32, two ranges of one buffer;
// ids: (T) i32 or u32, read as u32; out: (T, D).
// One invocation per code word: 8 consecutive outputs of one group (G is a
// multiple of 8).
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
  let words = p.dim / 8u; // code words per row
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.tokens * words) { return; }
  let t = i / words;
  let w = i % words;
  let id = ids[t] - p.first; // wraps above vocab for ids below first
  let o = t * p.dim + w * 8u;
  if (id >= p.vocab) {
    if (ids[t] >= p.total && p.first + p.vocab == p.total) {
      for (var j = 0u; j < 8u; j++) { out[o + j] = T(p.nan); }
    }
    return;
  }
  let groups = (p.dim + p.group - 1u) / p.group;
  let dm = unpack2x16float(scales[id * groups + (w * 8u) / p.group]); // (d, m)
  let q = codes[id * words + w];
  for (var j = 0u; j < 8u; j++) {
    out[o + j] = T(dm.y + f32((q >> (4u * j)) & 0xfu) * dm.x);
  }
}
