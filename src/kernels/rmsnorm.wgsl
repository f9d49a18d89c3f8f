// rmsnorm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w
// As Hugging Face LlamaRMSNorm: the mean of squares in f32, then scaled by w.
// x: (R, D) row-major; w: (D) f32; out: (R, D) of type O (T, or f32). One workgroup per row.
// Needs: common.wgsl

struct Params { rows: u32, dim: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<O>;

override WG: u32 = 256;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = group_index(wid, nwg);
  let base = row * p.dim;
  var ss = 0.0;
  if (row < p.rows) {
    for (var i = lid; i < p.dim; i += WG) {
      let v = f32(x[base + i]);
      ss += v * v;
    }
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (row >= p.rows) { return; }
  let inv = 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WG) {
    out[base + i] = O(f32(x[base + i]) * inv * w[i]);
  }
}
