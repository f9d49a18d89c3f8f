// copy: dst = src, 16 bytes per invocation. The bandwidth yardstick the kernel
// benchmark compares the 4-bit matvec against (same adapter, same run).
// src: (n) vec4<u32>; dst: (n) vec4<u32>. Needs: common.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    dst[i] = src[i];
  }
}
