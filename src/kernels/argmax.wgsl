// argmax: out[o] = the index of the largest logit of one row, as torch.argmax:
// ties go to the first index, NaN counts as larger than any number (the first
// NaN wins), and -0 equals +0. One workgroup: each invocation scans a strided
// slice in increasing index order, then a tree reduction over (key, index).
// logits: the row's V values start at element p.base of the binding (the
//         binding starts at the 256-byte boundary at or before the row);
// out: (n) u32, only out[p.out_index] is written. Needs: nothing.

struct Params { dim: u32, base: u32, out_index: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override WG: u32 = 256; // a power of two
var<workgroup> best: array<vec2<u32>, WG>; // (key, index)

// Order-preserving u32 image of x: a < b iff key(a) < key(b). NaN maps above
// +inf, -0 onto +0. Tested on the bits: WGSL may assume floats are never NaN.
fn argmax_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0xffffffffu; }
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, b >= 0x80000000u);
}

// Whether (key, index) b beats a: larger key, or the same key earlier.
fn beats(b: vec2<u32>, a: vec2<u32>) -> bool {
  return b.x > a.x || (b.x == a.x && b.y < a.y);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  // key 0 is below every real key (-inf maps to 0x007fffff): idle invocations never win
  var mine = vec2<u32>(0u, 0xffffffffu);
  for (var i = lid; i < p.dim; i += WG) {
    let k = argmax_key(f32(logits[p.base + i]));
    if (k > mine.x) { mine = vec2<u32>(k, i); } // strict: the first of equal keys stays
  }
  best[lid] = mine;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && beats(best[lid + s], best[lid])) { best[lid] = best[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[p.out_index] = best[0].y; }
}
