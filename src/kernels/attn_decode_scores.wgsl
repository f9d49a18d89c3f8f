// attn_decode_scores: the first pass of attn_decode's thread form (for
// adapters where workgroup barriers are dear): a thread per (query head,
// 4 consecutive keys) computes their scores, scale * q·k in the log2 domain,
// and stores them beside their chunk's partial record; each q value read
// serves the 4 keys (4 keys, not 1: 2x on SwiftShader, bench/RESULTS.md).
// attn_decode_values.wgsl reads them back. No workgroup memory, no barrier.
//
// q:    (H, Dh) row-major, read as vec4 (Dh % 4 == 0)
// kc:   (maxT, Hkv, Dh) the key cache, rows 0 .. len-1 written
// part: (H, slots, stride) f32 records [o[0 .. Dh), m, l, scores[0 .. chunk)];
//       this pass writes the scores of keys 0 .. len-1
//
// Grid: x = groups of 4 keys, y = query head.
// Needs: nothing from lib/.

struct Params {
  Hkv: u32,     // key/value heads
  G: u32,       // query heads per KV head
  len: u32,     // valid keys
  slots: u32,   // chunks the partials buffer holds per head
  stride: u32,  // floats per record: Dh + 2 + chunk
  scale: f32,   // score scale * log2(e)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

override WG: u32 = 64;
override DH: u32 = 64;     // head dim, a multiple of 4
override CHUNK: u32 = 128; // keys per chunk (record)

override DH4: u32 = DH / 4u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x * 4u;  // the first of this thread's 4 keys
  let h = gid.y;
  if (j >= p.len) { return; }
  // keys past len re-read key len - 1 and are not written
  let row = p.Hkv * DH4;
  let kb = (j * p.Hkv + h / p.G) * DH4;
  let k1 = (min(j + 1u, p.len - 1u) - j) * row;
  let k2 = (min(j + 2u, p.len - 1u) - j) * row;
  let k3 = (min(j + 3u, p.len - 1u) - j) * row;
  let qb = h * DH4;
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  for (var i = 0u; i < DH4; i++) {
    let qi = vec4<f32>(q[qb + i]);
    s0 += dot(qi, vec4<f32>(kc[kb + i]));
    s1 += dot(qi, vec4<f32>(kc[kb + k1 + i]));
    s2 += dot(qi, vec4<f32>(kc[kb + k2 + i]));
    s3 += dot(qi, vec4<f32>(kc[kb + k3 + i]));
  }
  let out = (h * p.slots + j / CHUNK) * p.stride + DH + 2u + j % CHUNK;  // CHUNK % 4 == 0: the 4 keys share a chunk
  part[out] = s0 * p.scale;
  if (j + 1u < p.len) { part[out + 1u] = s1 * p.scale; }
  if (j + 2u < p.len) { part[out + 2u] = s2 * p.scale; }
  if (j + 3u < p.len) { part[out + 3u] = s3 * p.scale; }
}
