// moe_router: per token t, the top k of E experts and their weights from the
// gate logits (the router of a mixture-of-experts layer, Mixtral's
// MixtralSparseMoeBlock and its kin):
//   ids[t, r]     = the expert of rank r: larger logit first, equal logits by
//                   lower index (the rule reference/moe_ops.ts fixes); NaN
//                   ranks above any number; -0 equals +0
//   weights[t, r] = exp(l[ids[t, r]] - m) / denom,  m = the largest logit,
//                   denom = sum of exp(l - m) over all E in index order
//                   (softmax, then top-k), or over the k chosen in rank order
//                   (renormalised, or softmax of the top k: the same numbers).
// Ranking the logits rather than the f32 probabilities is the order of the
// exact probabilities (softmax is monotone) without the ties rounding makes.
//
// LANES invocations per token, two algorithms (the branch is settled when
// the pipeline is built):
//   LANES = 1: an invocation per token (WG tokens per workgroup) picks the k
//     experts one after the other, each the first in rank order after the one
//     before (k passes over E), with no barrier. On SwiftShader a barrier
//     makes every invocation a coroutine: this is 5-50x faster there.
//   LANES = WG: a workgroup per token; each expert's rank is the count of
//     experts that rank before it (E comparisons in workgroup memory, each
//     invocation ranking E / WG experts); rank r < k writes slot r, so every
//     slot is written once.
// logits: (T, E) row-major; ids: (T, k) u32; weights: (T, k) f32. E <= 128.
// Needs: common.wgsl

struct Params { tokens: u32, experts: u32, k: u32, norm_topk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<T>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

override WG: u32 = 128;  // invocations per workgroup
override LANES: u32 = 128; // invocations per token: 1, or WG
const MAX_E = 128u;
const NONE = 0xffffffffu;
var<workgroup> keys: array<u32, MAX_E>; // order_key of each logit
var<workgroup> vals: array<f32, MAX_E>; // the logits as f32
var<workgroup> sel: array<u32, MAX_E>;  // sel[r]: the expert of rank r < k
var<workgroup> denom: f32;

// Order-preserving u32 image of x (as argmax.wgsl): NaN above +inf, -0 onto
// +0. Tested on the bits: WGSL may assume floats are never NaN.
fn order_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0xffffffffu; }
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, b >= 0x80000000u);
}

// LANES = 1: token t by one invocation.
fn route_serial(t: u32) {
  let E = p.experts;
  let row = t * E;
  let out = t * p.k;
  var prev_key = 0u;
  var prev = NONE; // the expert chosen last; NONE before the first
  var m = 0.0;
  var s = 0.0;
  for (var r = 0u; r < p.k; r++) {
    // the first expert in rank order after `prev`
    var best_key = 0u;
    var best = NONE;
    for (var j = 0u; j < E; j++) {
      let kj = order_key(f32(logits[row + j]));
      let after = prev == NONE || kj < prev_key || (kj == prev_key && j > prev);
      if (after && (best == NONE || kj > best_key)) {
        best_key = kj;
        best = j;
      }
    }
    prev_key = best_key;
    prev = best;
    let v = f32(logits[row + best]);
    if (r == 0u) { m = v; }
    let num = exp(v - m);
    ids[out + r] = best;
    weights[out + r] = num;
    s += num;
  }
  if (p.norm_topk == 0u) {
    s = 0.0;
    for (var j = 0u; j < E; j++) { s += exp(f32(logits[row + j]) - m); }
  }
  for (var r = 0u; r < p.k; r++) { weights[out + r] = weights[out + r] / s; }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (LANES == 1u) {
    let token = group_index(wid, nwg) * WG + lid;
    if (token < p.tokens) { route_serial(token); }
    return;
  }
  let t = group_index(wid, nwg);
  if (t >= p.tokens) { return; } // the same for the whole workgroup
  let E = p.experts;
  for (var i = lid; i < E; i += WG) {
    let v = f32(logits[t * E + i]);
    vals[i] = v;
    keys[i] = order_key(v);
  }
  workgroupBarrier();
  // rank of expert i: how many rank before it (a larger key, or the same key earlier)
  for (var i = lid; i < E; i += WG) {
    let key = keys[i];
    var rank = 0u;
    for (var j = 0u; j < E; j++) {
      let kj = keys[j];
      rank += select(0u, 1u, kj > key || (kj == key && j < i));
    }
    if (rank < p.k) { sel[rank] = i; }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let m = vals[sel[0]];
    var s = 0.0;
    if (p.norm_topk != 0u) {
      for (var r = 0u; r < p.k; r++) { s += exp(vals[sel[r]] - m); }
    } else {
      for (var i = 0u; i < E; i++) { s += exp(vals[i] - m); }
    }
    denom = s;
  }
  workgroupBarrier();
  let m = vals[sel[0]];
  for (var r = lid; r < p.k; r += WG) {
    let e = sel[r];
    ids[t * p.k + r] = e;
    weights[t * p.k + r] = exp(vals[e] - m) / denom;
  }
}
