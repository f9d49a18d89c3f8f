// layernorm: out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b
// As torch.nn.LayerNorm: biased variance (divide by D), eps inside the sqrt.
// Two passes over the row in f32, the mean first and then the centred sum of
// squares, so a row with a large mean loses nothing to cancellation.
// x: (R, D) row-major; w: (D) f32; b: (D) f32, read only when HAS_BIAS;
// out: (R, D). One workgroup per row; or, with PER_THREAD, one thread per row
// and no barrier (as rmsnorm.wgsl: where a barrier is dear). PER_THREAD is
// settled when the pipeline is built.
// Needs: common.wgsl

struct Params { rows: u32, dim: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// Without a bias the dispatch binds w here again: the binding stays in the
// 'auto' layout (it is referenced below) and is never read.
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

override WG: u32 = 256;
override HAS_BIAS: bool = true;
override PER_THREAD: bool = false;
var<workgroup> partial: array<f32, WG>;

// s + v for a compensated sum s = (sum, compensation).
fn kahan_add(s: vec2<f32>, v: f32) -> vec2<f32> {
  let y = v - s.y;
  let t = s.x + y;
  return vec2<f32>(t, (t - s.x) - y);
}

// out[row, i] for i = first, first + stride, ... of a row with this mean and 1 / std.
fn write_row(base: u32, mean: f32, inv: f32, first: u32, stride: u32) {
  for (var i = first; i < p.dim; i += stride) {
    var y = (f32(x[base + i]) - mean) * inv * w[i];
    if (HAS_BIAS) { y += b[i]; }
    out[base + i] = T(y);
  }
}

// Sum of `partial` over the workgroup; every invocation gets the total.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (PER_THREAD) {
    let r = group_index(wid, nwg) * WG + lid;
    if (r < p.rows) {
      // One thread sums the whole row: compensated (Kahan) sums keep the
      // mean as exact as the workgroup's pairwise tree does.
      let base = r * p.dim;
      var sum = vec2<f32>(0.0); // (sum, compensation)
      for (var i = 0u; i < p.dim; i++) { sum = kahan_add(sum, f32(x[base + i])); }
      let mean = sum.x / f32(p.dim);
      var ss = vec2<f32>(0.0);
      for (var i = 0u; i < p.dim; i++) {
        let d = f32(x[base + i]) - mean;
        ss = kahan_add(ss, d * d);
      }
      write_row(base, mean, 1.0 / sqrt(ss.x / f32(p.dim) + p.eps), 0u, 1u);
    }
    return; // uniform: PER_THREAD is a pipeline constant
  }
  let row = group_index(wid, nwg);
  let live = row < p.rows; // a whole workgroup is in or out, but all must reach the barriers
  let base = row * p.dim;
  var sum = 0.0;
  if (live) {
    for (var i = lid; i < p.dim; i += WG) { sum += f32(x[base + i]); }
  }
  let mean = workgroup_sum(lid, sum) / f32(p.dim);
  var ss = 0.0;
  if (live) {
    for (var i = lid; i < p.dim; i += WG) {
      let d = f32(x[base + i]) - mean;
      ss += d * d;
    }
  }
  let inv = 1.0 / sqrt(workgroup_sum(lid, ss) / f32(p.dim) + p.eps);
  if (!live) { return; }
  write_row(base, mean, inv, lid, WG);
}
