// attn_decode_combine: the second pass of attn_decode (flash-decoding): merges
// the per-chunk partials of each head exactly, by log-sum-exp:
//   M = max_c m_c,  w_c = exp2(m_c - M),  out = sum_c w_c o_c / sum_c w_c l_c
// (m in the log2 domain, as attn_decode.wgsl writes it).
//
// part: (H, slots, stride) f32, records [o[0 .. Dh), m, l, ...]; chunks 0 .. nchunks-1 valid
// out:  (H, Dh)
// One workgroup per head; threads over the head dim.
// Needs: nothing from lib/.

struct Params {
  Dh: u32,       // head dim
  nchunks: u32,  // chunks to merge
  slots: u32,    // chunks the partials buffer holds per head
  stride: u32,   // floats per record
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let rec = p.stride;
  let base = h * p.slots * rec;
  // the largest chunk max (every thread finds it: nchunks reads, cheaper than a barrier)
  var mx = part[base + p.Dh];
  for (var c = 1u; c < p.nchunks; c++) { mx = max(mx, part[base + c * rec + p.Dh]); }
  for (var d = tid; d < p.Dh; d += WG) {
    var num = 0.0;
    var den = 0.0;
    for (var c = 0u; c < p.nchunks; c++) {
      let r = base + c * rec;
      let w = exp2(part[r + p.Dh] - mx);
      num += w * part[r + d];
      den += w * part[r + p.Dh + 1u];
    }
    out[h * p.Dh + d] = T(num / den);
  }
}
