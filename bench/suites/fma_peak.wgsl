// fma_peak: the adapter's f32 multiply-add rate, with nothing else in the way:
// each thread runs `iters` steps on 8 independent vec4 fma chains in
// registers, and no memory traffic but one store at the end (which keeps the
// compiler from dropping the work). A step is 4 fmas of each chain, written
// out: SwiftShader does not unroll loops, and with one fma per chain a step
// measured the loop (3.6 GFLOP/s where this gives 8.9). 256 flops per step
// (8 chains x 4 fmas x 4 lanes x multiply and add).

struct Params {
  iters: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> sink: array<vec4<f32>>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  let x = f32(i) * 1e-9;
  var a0 = vec4<f32>(x, x + 1.0, x + 2.0, x + 3.0);
  var a1 = a0 + 0.1;
  var a2 = a0 + 0.2;
  var a3 = a0 + 0.3;
  var a4 = a0 + 0.4;
  var a5 = a0 + 0.5;
  var a6 = a0 + 0.6;
  var a7 = a0 + 0.7;
  let b = vec4<f32>(0.999);
  let c = vec4<f32>(1e-3);
  for (var k = 0u; k < p.iters; k++) {
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
    a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
    a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
    a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
    a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
  }
  sink[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
