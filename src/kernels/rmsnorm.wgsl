// rmsnorm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w
// As Hugging Face LlamaRMSNorm: the mean of squares in f32, then scaled by w.
// x: (R, D) row-major; w: (D) f32; out: (R, D) of type O (T, or f32).
// One workgroup per row, reducing in workgroup memory; or, with PER_THREAD,
// one thread per row and no barrier (where a barrier is dear: on SwiftShader
// it makes every invocation a coroutine). PER_THREAD is settled when the
// pipeline is built, so the other branch is not compiled in.
// Needs: common.wgsl

struct Params { rows: u32, dim: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<O>;

override WG: u32 = 256;
override PER_THREAD: bool = false;
var<workgroup> partial: array<f32, WG>;

// out[row, :] for a row whose sum of squares is ss.
fn scale_row(base: u32, ss: f32, first: u32, stride: u32) {
  let inv = 1.0 / sqrt(ss / f32(p.dim) + p.eps);
  for (var i = first; i < p.dim; i += stride) {
    out[base + i] = O(f32(x[base + i]) * inv * w[i]);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (PER_THREAD) {
    let row = group_index(wid, nwg) * WG + lid;
    if (row < p.rows) {
      var ss = 0.0;
      for (var i = 0u; i < p.dim; i++) {
        let v = f32(x[row * p.dim + i]);
        ss += v * v;
      }
      scale_row(row * p.dim, ss, 0u, 1u);
    }
    return; // uniform: PER_THREAD is a pipeline constant
  }
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
  scale_row(base, partial[0], lid, WG);
}
