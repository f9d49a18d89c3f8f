// embed: out[t, :] = table[ids[t], :], or a row of NaN when ids[t] is not in [0, V).
// A bad id must not pass for a plausible row: NaN poisons everything after it.
// The table may be one row part of a larger one (a vocabulary split to fit a
// binding): it holds rows [first, first + vocab) of `total`; a part writes the
// tokens whose rows it holds, and the last part also the NaN rows.
// table: (vocab, D) f32; ids: (T) i32 or u32, read as u32 (a negative i32
// becomes >= 2^31 >= total, so one comparison catches both ends); out: (T, D).
// One invocation per output element.
// Needs: common.wgsl

// nan: a quiet NaN from the host, because WGSL cannot write one as a constant.
struct Params { tokens: u32, dim: u32, vocab: u32, first: u32, total: u32, nan: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.tokens * p.dim) { return; }
  let t = i / p.dim;
  let k = i % p.dim;
  let row = ids[t] - p.first; // wraps above vocab for ids below first
  if (row < p.vocab) {
    out[i] = T(table[row * p.dim + k]);
  } else if (ids[t] >= p.total && p.first + p.vocab == p.total) {
    out[i] = T(p.nan);
  }
}
