// activations.wgsl: activations shared by several kernels, in f32.

// silu(v) = v * sigmoid(v), written so exp never overflows.
fn silu(v: f32) -> f32 {
  let e = exp(-abs(v));
  return v * select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// torch softplus with threshold 20. A series while exp(v) < 1/8: WGSL's log
// is only promised to 2^-21 absolute near 1, too coarse for the small steps
// real models take (dt ~ 0.01).
fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  let e = exp(v);
  if (e < 0.125) {
    // e - e^2/2 + ... - e^8/8: the first term left out is < 2^-24 of the sum
    return e * (1.0 - e * (0.5 - e * (1.0 / 3.0 - e * (0.25 - e * (0.2 - e * (1.0 / 6.0 - e * (1.0 / 7.0 - e * 0.125)))))));
  }
  return log(1.0 + e);
}
