// conv1d_causal: the Mamba mixer's causal depthwise conv over time, SiLU fused,
// continuing from a carried state (HF MambaMixer.slow_forward step 2):
//   xpad = [state rows as time steps -(Kc-1) .. -1; x]
//   out[t, d] = silu(bias[d] + sum_k w[d, k] * xpad[t + k, d])     (tap Kc-1 is token t)
//   state'    = the last Kc-1 rows of xpad
// x: (T, Di) row-major; w: (Di, Kc) f32; bias: (Di) f32 (w again when HAS_BIAS == 0,
// never read); state: (Di, Kc-1) of x's type (its values are copies of inputs, so
// exact in f16 too), oldest first, read and rewritten in place;
// out: (T, Di). One invocation per channel d and tile of TT tokens, d fastest;
// it slides a window of the last Kc-1 inputs along its tile in registers.
//
// No race on the state, in one dispatch: only tokens t < Kc-1 <= TT read the
// state, all in tile 0, so the tile-0 invocation of channel d is the only one
// that reads state[d, :]; it writes the new state after its own reads.
// Needs: common.wgsl, activations.wgsl

struct Params { tokens: u32, Di: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<T>;
@group(0) @binding(5) var<storage, read_write> out: array<T>;

override WG: u32 = 256;
override TT: u32 = 8;        // tokens per invocation, >= KC - 1
override KC: u32 = 4;        // Kc, the kernel width (2 .. KMAX)
override HAS_BIAS: u32 = 1;

const KMAX = 8u;  // register arrays need a constant size; loops run to KC

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  let tiles = (p.tokens + TT - 1u) / TT;
  if (i >= tiles * p.Di) { return; }
  let d = i % p.Di;
  let t0 = (i / p.Di) * TT;
  let t1 = min(t0 + TT, p.tokens);
  let k1 = KC - 1u;
  var wk: array<f32, KMAX>;
  for (var k = 0u; k < KC; k++) { wk[k] = w[d * KC + k]; }
  var b = 0.0;
  if (HAS_BIAS != 0u) { b = bias[d]; }
  // win[j] = xpad[t + j] for the next token t: the k1 inputs before it
  var win: array<f32, KMAX>;
  for (var j = 0u; j < k1; j++) {
    if (t0 == 0u) { win[j] = f32(state[d * k1 + j]); }
    else { win[j] = f32(x[(t0 - k1 + j) * p.Di + d]); }
  }
  for (var t = t0; t < t1; t++) {
    let xt = f32(x[t * p.Di + d]);
    var acc = b + wk[k1] * xt;
    for (var k = 0u; k < k1; k++) { acc += wk[k] * win[k]; }
    out[t * p.Di + d] = T(silu(acc));
    for (var j = 0u; j + 1u < k1; j++) { win[j] = win[j + 1u]; }
    win[k1 - 1u] = xt;
  }
  if (t0 != 0u) { return; }
  // tile 0 of channel d: the new state, the last k1 rows of [state; x]
  for (var j = 0u; j < k1; j++) {
    if (p.tokens <= TT) { state[d * k1 + j] = T(win[j]); }  // the window ends at the last token
    else { state[d * k1 + j] = x[(p.tokens - k1 + j) * p.Di + d]; }
  }
}
