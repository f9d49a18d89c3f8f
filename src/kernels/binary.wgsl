// binary: out[i] = a[i] + b[i % bn] (OP 0) or a[i] * b[i % bn] (OP 1).
// bn is n when b has a's shape, or D when b is a row of a's last dim broadcast
// over rows (a bias, a per-channel scale).
// a: (n) row-major; b: (bn); out: (n). One invocation per element.
// Needs: common.wgsl

struct Params { n: u32, bn: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

override WG: u32 = 256;
override OP: u32 = 0;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.n) { return; }
  let x = f32(a[i]);
  let y = f32(b[i % p.bn]);
  out[i] = T(select(x + y, x * y, OP == 1u));
}
