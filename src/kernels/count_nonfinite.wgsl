// count_nonfinite: out[o] = how many of one row's logits are NaN or ±inf. The
// generate loop reads it beside the chosen token: argmax (torch order, NaN
// wins) and sample (NaN never drawn) alone would turn overflowed logits into
// a plausible-looking token. One workgroup; each invocation counts a strided
// slice, then one workgroup atomic sums the counts.
// logits: the row's V values start at element p.base of the binding (as argmax);
// out: (n) u32, only out[p.out_index] is written. Needs: nothing.

struct Params { dim: u32, base: u32, out_index: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override WG: u32 = 256;
var<workgroup> total: atomic<u32>; // workgroup memory starts zeroed

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var mine = 0u;
  for (var i = lid; i < p.dim; i += WG) {
    // Tested on the bits: WGSL may assume floats are never NaN or infinite.
    let b = bitcast<u32>(f32(logits[p.base + i]));
    if ((b & 0x7fffffffu) >= 0x7f800000u) { mine += 1u; }
  }
  atomicAdd(&total, mine);
  workgroupBarrier();
  if (lid == 0u) { out[p.out_index] = atomicLoad(&total); }
}
