// ssm_step: the selective scan in its recurrent form, one invocation per
// channel walking the tokens in order (decode, T = 1, and short sequences).
// Per channel d and state n (Gu & Dao 2023, Algorithm 2; HF MambaMixer.slow_forward):
//   dt = softplus(delta[t, d])                       (torch: threshold 20)
//   h[n] = exp(dt * A[d, n]) * h[n] + dt * B[t, n] * u[t, d]
//   y[t, d] = (sum_n C[t, n] * h[n] + D[d] * u[t, d]) * silu(z[t, d])
// The N states of a channel stay in registers: no reduction over n is needed.
// selective_scan.wgsl is the chunked form for long prompts.
//
// u, delta, z, y: (T, Di) row-major; B, C: (T, N); A: (Di, N) f32; D: (Di) f32;
// state: (Di, N) f32, h before the first token, rewritten with h after the last.
// Nine storage bindings: the device must allow that many per stage.
// Needs: common.wgsl, activations.wgsl

struct Params { tokens: u32, Di: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> u: array<T>;
@group(0) @binding(2) var<storage, read> delta: array<T>;
@group(0) @binding(3) var<storage, read> A: array<f32>;
@group(0) @binding(4) var<storage, read> B: array<T>;
@group(0) @binding(5) var<storage, read> C: array<T>;
@group(0) @binding(6) var<storage, read> D: array<f32>;
@group(0) @binding(7) var<storage, read> z: array<T>;
@group(0) @binding(8) var<storage, read_write> state: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<T>;

override WG: u32 = 64;
override NS: u32 = 16;  // N, the state size (<= NMAX)

const NMAX = 64u;       // register arrays need a constant size; loops run to NS
const LOG2E = 1.4426950408889634;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d = group_index(wid, nwg) * WG + lid;
  if (d >= p.Di) { return; }
  var h: array<f32, NMAX>;
  var a: array<f32, NMAX>;  // A * log2(e): the decay is exp2(dt * a)
  for (var n = 0u; n < NS; n++) {
    h[n] = state[d * NS + n];
    a[n] = A[d * NS + n] * LOG2E;
  }
  let dd = D[d];
  for (var t = 0u; t < p.tokens; t++) {
    let i = t * p.Di + d;
    let dt = softplus(f32(delta[i]));
    let ut = f32(u[i]);
    let bu = dt * ut;
    var acc = 0.0;
    for (var n = 0u; n < NS; n++) {
      h[n] = exp2(dt * a[n]) * h[n] + bu * f32(B[t * NS + n]);
      acc += f32(C[t * NS + n]) * h[n];
    }
    y[i] = T((acc + dd * ut) * silu(f32(z[i])));
  }
  for (var n = 0u; n < NS; n++) {
    state[d * NS + n] = h[n];
  }
}
