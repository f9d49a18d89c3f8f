// unary: out[i] = f(x[i]) for an activation function f chosen by OP:
//   0 silu       x * sigmoid(x)                                  (HF "silu")
//   1 gelu       x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))        (HF "gelu", exact)
//   2 gelu_tanh  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (HF "gelu_pytorch_tanh", "gelu_new")
// Both GELUs are evaluated as x * (a probability in [0, 1]) computed without
// cancellation: 0.5 (1 + tanh(u)) = sigmoid(2u), and Phi from erfc for x < 0,
// so large negative x gives small outputs with full relative precision and no
// exp() ever overflows.
// x: (n) row-major; out: (n). One invocation per element.
// Needs: common.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

override WG: u32 = 256;
override OP: u32 = 0;

// 1 / (1 + exp(-v)) without overflow: exp only ever sees -|v|.
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// Phi(v), the standard normal CDF, from erfc(|v| / sqrt 2) by Abramowitz &
// Stegun 7.1.26: erfc(a) = (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-a^2),
// t = 1 / (1 + 0.3275911 a), for a >= 0, with absolute error <= 1.5e-7 (before
// f32 rounding). WGSL has no erf.
fn normal_cdf(v: f32) -> f32 {
  let a = abs(v) * 0.70710678;
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let half_erfc = 0.5 * poly * exp(-a * a);
  return select(1.0 - half_erfc, half_erfc, v < 0.0);
}

fn activation(v: f32) -> f32 {
  switch OP {
    case 1u: { return v * normal_cdf(v); }
    case 2u: { return v * sigmoid(1.5957691216 * (v + 0.044715 * v * v * v)); } // 2 * sqrt(2/pi)
    default: { return v * sigmoid(v); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i < p.n) {
    out[i] = T(activation(f32(x[i])));
  }
}
