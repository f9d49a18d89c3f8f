// attn_decode_values: the second pass of attn_decode's thread form: a thread
// per (query head, chunk, block of 16 of the head dim: 4 vec4 lanes) reads
// its chunk's scores (attn_decode_scores.wgsl), takes their max m, and sums
//   l = sum_j exp2(s_j - m),  o = sum_j exp2(s_j - m) v_j
// over the chunk's keys: the partial record attn_decode_combine.wgsl merges,
// or, when one chunk holds every key, the normalised output itself.
// With no barrier to share them, the threads of a chunk each compute its
// weights; a block of 4 vec4 (not 1) per thread uses each one for 16 dims
// (2x on SwiftShader, bench/RESULTS.md).
//
// part: (H, slots, stride) f32 records [o[0 .. Dh), m, l, scores[0 .. chunk)]
// vc:   (maxT, Hkv, Dh) the value cache, rows 0 .. len-1 written
// out:  (H, Dh) written when nchunks == 1
//
// Grid: x = threads over (chunk, block), block fastest, so that neighbouring
// threads read consecutive parts of one value row; y = query head.
// Needs: nothing from lib/.

struct Params {
  Hkv: u32,     // key/value heads
  G: u32,       // query heads per KV head
  len: u32,     // valid keys
  nchunks: u32, // ceil(len / chunk)
  slots: u32,   // chunks the partials buffer holds per head
  stride: u32,  // floats per record: Dh + 2 + chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<storage, read> vc: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<T>>;

override WG: u32 = 64;
override DH: u32 = 64;     // head dim, a multiple of 4
override CHUNK: u32 = 128; // keys per chunk (record)

override DH4: u32 = DH / 4u;
const NEG: f32 = -1.0e30;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let nb = (DH4 + 3u) / 4u;            // blocks of 4 vec4 lanes per head
  let d = (gid.x % nb) * 4u;           // first vec4 lane of this thread's block
  let c = gid.x / nb;
  let h = gid.y;
  if (c >= p.nchunks) { return; }
  // the block's last lanes may fall past Dh: they re-read lane DH4 - 1 and are not written
  let i1 = min(d + 1u, DH4 - 1u) - d;
  let i2 = min(d + 2u, DH4 - 1u) - d;
  let i3 = min(d + 3u, DH4 - 1u) - d;
  let c0 = c * CHUNK;
  let n = min(CHUNK, p.len - c0);
  let rec = (h * p.slots + c) * p.stride;
  let sb = rec + DH + 2u;
  var m = NEG;
  for (var j = 0u; j < n; j++) { m = max(m, part[sb + j]); }
  var l = 0.0;
  var o0 = vec4<f32>(0.0);
  var o1 = vec4<f32>(0.0);
  var o2 = vec4<f32>(0.0);
  var o3 = vec4<f32>(0.0);
  var vi = (c0 * p.Hkv + h / p.G) * DH4 + d;
  for (var j = 0u; j < n; j++) {
    let w = exp2(part[sb + j] - m);
    l += w;
    o0 += w * vec4<f32>(vc[vi]);
    o1 += w * vec4<f32>(vc[vi + i1]);
    o2 += w * vec4<f32>(vc[vi + i2]);
    o3 += w * vec4<f32>(vc[vi + i3]);
    vi += p.Hkv * DH4;
  }
  if (p.nchunks == 1u) {
    out[h * DH4 + d] = vec4<T>(o0 / l);
    if (d + 1u < DH4) { out[h * DH4 + d + 1u] = vec4<T>(o1 / l); }
    if (d + 2u < DH4) { out[h * DH4 + d + 2u] = vec4<T>(o2 / l); }
    if (d + 3u < DH4) { out[h * DH4 + d + 3u] = vec4<T>(o3 / l); }
    return;
  }
  put(rec + d * 4u, o0);
  if (d + 1u < DH4) { put(rec + d * 4u + 4u, o1); }
  if (d + 2u < DH4) { put(rec + d * 4u + 8u, o2); }
  if (d + 3u < DH4) { put(rec + d * 4u + 12u, o3); }
  if (d == 0u) {
    part[rec + DH] = m;
    part[rec + DH + 1u] = l;
  }
}

fn put(i: u32, o: vec4<f32>) {
  part[i] = o.x;
  part[i + 1u] = o.y;
  part[i + 2u] = o.z;
  part[i + 3u] = o.w;
}
