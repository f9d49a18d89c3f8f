// softmax: out[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r), per row.
// Online form (Milakov & Gimelshein 2018): each invocation keeps a running max m
// and a sum s rescaled whenever m grows, over its strided share of the row;
// the workgroup then merges the (m, s) pairs in a tree. Two reads of the row
// instead of three, and no exp of a positive number.
// x: (R, D) row-major; out: (R, D). One workgroup per row.
// Needs: common.wgsl

struct Params { rows: u32, dim: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

override WG: u32 = 256;
var<workgroup> part_m: array<f32, WG>;
var<workgroup> part_s: array<f32, WG>;

const LOWEST = -0x1.fffffep+127f; // the most negative finite f32: WGSL cannot spell -inf

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = group_index(wid, nwg);
  let live = row < p.rows; // all invocations must reach the barriers
  let base = row * p.dim;
  var m = LOWEST;
  var s = 0.0;
  if (live) {
    for (var i = lid; i < p.dim; i += WG) {
      let v = f32(x[base + i]);
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  part_m[lid] = m;
  part_s[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let m2 = part_m[lid + k];
      let mm = max(part_m[lid], m2);
      part_s[lid] = part_s[lid] * exp(part_m[lid] - mm) + part_s[lid + k] * exp(m2 - mm);
      part_m[lid] = mm;
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  let mx = part_m[0];
  let inv = 1.0 / part_s[0];
  for (var i = lid; i < p.dim; i += WG) {
    out[base + i] = T(exp(f32(x[base + i]) - mx) * inv);
  }
}
