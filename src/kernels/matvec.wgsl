// matvec: y[n] = sum_k W[n, k] * x[k], one token through an f32-weight linear
// layer (dt_proj, the f32 load mode). One invocation per output row: no
// barriers, which a tiled matmul would pay for nothing when T = 1.
// x: (K) T; w: (N, K) f32 row-major (out, in); y: (N) T. Needs: common.wgsl

struct Params { N: u32, K: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<T>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = group_index(wid, nwg) * WG + lid;
  if (n >= p.N) { return; }
  let row = n * p.K;
  // four partial sums: shorter dependency chains, same f32 accumulation as a tiled matmul
  var acc = vec4<f32>(0.0);
  var k = 0u;
  for (; k + 4u <= p.K; k += 4u) {
    acc += vec4<f32>(w[row + k], w[row + k + 1u], w[row + k + 2u], w[row + k + 3u]) *
           vec4<f32>(f32(x[k]), f32(x[k + 1u]), f32(x[k + 2u]), f32(x[k + 3u]));
  }
  for (; k < p.K; k++) {
    acc.x += w[row + k] * f32(x[k]);
  }
  y[n] = T(acc.x + acc.y + acc.z + acc.w);
}
