// add_inplace: acc[r, c] += x[r, c], or acc[r, c] += x[c] when x is one row
// (a bias broadcast over rows). The residual adds and linear biases of a
// forward step; in place because an output may not alias an input binding.
// acc: (R, C) read_write; x: (R, C) or (C). Needs: common.wgsl

struct Params { n: u32, cols: u32, broadcast: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<T>;
@group(0) @binding(2) var<storage, read> x: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let j = select(i, i % p.cols, p.broadcast == 1u);
  acc[i] = T(f32(acc[i]) + f32(x[j]));
}
