// moe_combine: the experts' outputs back into one row per token, weighted:
//   out[t, d] (+)= sum_j weights[t, j] * y[t * k + j, d]
// in f32, the slots in order 0 .. k-1 (no atomics: the same bits every run),
// added to out when p.accumulate is set (the residual stream), else stored.
// An id >= E (ids[t, j]) makes out[t, :] NaN: a bad route must not pass for a
// plausible output. Decode (T = 1) takes moe_matvec_q4's y (k, D); prefill
// moe_matmul_q4's (T * k, D), which it writes in (token, slot) order.
// y: (T * k, D) row-major; ids: (T, k) u32; weights: (T, k) f32; out: (T, D).
// One invocation per output element. Needs: common.wgsl

struct Params { tokens: u32, dim: u32, k: u32, experts: u32, accumulate: u32, nan: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<T>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.tokens * p.dim) { return; }
  let t = i / p.dim;
  let d = i % p.dim;
  var s = 0.0;
  var routed = true;
  for (var j = 0u; j < p.k; j++) {
    let entry = t * p.k + j;
    routed = routed && ids[entry] < p.experts;
    s += weights[entry] * f32(y[entry * p.dim + d]);
  }
  if (p.accumulate != 0u) { s += f32(out[i]); }
  out[i] = select(T(p.nan), T(s), routed);
}
