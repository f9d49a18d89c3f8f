// attn_prefill_threads: attn_prefill's causal attention with no workgroup
// memory and no barrier, for adapters where barriers are dear (software
// adapters: tunings.ts chooses). Same semantics as attn_prefill.wgsl:
// out = softmax(q·kᵀ * scale, causal) · v per head, softmax in f32, query head
// h reads KV head h / G.
//
// A thread per (query token, query head, block of 64 of the head dim: 16 vec4
// lanes, in registers) walks its keys 0 ..= pos0 + t, 4 at a time, with an
// online softmax (a new max rescales what came before). A head of more than
// 64 dims has several blocks, each computing the row's scores: no barrier to
// share them. Measured on SwiftShader at Dh 64 (bench/RESULTS.md), blocks of
// 16 vec4 beat blocks of 8 and 4, and 4 keys a step beat 1.
//
// q:   (T, H, Dh) row-major, read as vec4 (Dh % 4 == 0)
// kc:  (maxT, Hkv, Dh) the key cache, rows 0 .. pos0+T-1 written (rotary applied)
// vc:  (maxT, Hkv, Dh) the value cache, same rows
// out: (T, H, Dh)
//
// Grid: x = threads over (row, block), block fastest, last row first, where
// the rows of a KV head are its (token t, query head g of its group) pairs,
// row = t * G + g: neighbouring threads read the same key and value rows;
// y = KV head.
// Scores live in the log2 domain: scale carries log2(e).
// Needs: nothing from lib/.

struct Params {
  T: u32,      // new queries
  H: u32,      // query heads
  Hkv: u32,    // key/value heads
  G: u32,      // H / Hkv
  pos0: u32,   // absolute position of query 0
  scale: f32,  // score scale * log2(e)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<T>>;

override WG: u32 = 64;
override DH: u32 = 64;   // head dim, a multiple of 4
override DH4: u32 = DH / 4u;

const NEG: f32 = -1.0e30;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let nb = (DH4 + 15u) / 16u;          // blocks of 16 vec4 lanes per row
  let d = (gid.x % nb) * 16u;          // first vec4 lane of this thread's block
  let rows = p.T * p.G;
  if (gid.x / nb >= rows) { return; }
  let row = rows - 1u - gid.x / nb;    // the last rows see the most keys: start them first
  let kvh = gid.y;
  let t = row / p.G;
  let h = kvh * p.G + row % p.G;
  let qb = (t * p.H + h) * DH4;
  let step = p.Hkv * DH4;              // from one key's row to the next
  let nk = p.pos0 + t + 1u;            // keys this query sees
  // lanes of the block past the head re-read its last lane and are not written
  let vb = kvh * DH4 + d;
  let e = DH4 - 1u - d;                // the head's last lane, relative to d (a block's last when < 15)
  var m = NEG;
  var l = 0.0;
  var o0 = vec4<f32>(0.0);
  var o1 = vec4<f32>(0.0);
  var o2 = vec4<f32>(0.0);
  var o3 = vec4<f32>(0.0);
  var o4 = vec4<f32>(0.0);
  var o5 = vec4<f32>(0.0);
  var o6 = vec4<f32>(0.0);
  var o7 = vec4<f32>(0.0);
  var o8 = vec4<f32>(0.0);
  var o9 = vec4<f32>(0.0);
  var o10 = vec4<f32>(0.0);
  var o11 = vec4<f32>(0.0);
  var o12 = vec4<f32>(0.0);
  var o13 = vec4<f32>(0.0);
  var o14 = vec4<f32>(0.0);
  var o15 = vec4<f32>(0.0);
  // keys go 4 at a time: each q value read serves 4 keys, one rescale serves 4;
  // a key past nk re-reads key nk - 1 and gets weight 0
  for (var j = 0u; j < nk; j += 4u) {
    let r0 = j * step;
    let r1 = min(j + 1u, nk - 1u) * step;
    let r2 = min(j + 2u, nk - 1u) * step;
    let r3 = min(j + 3u, nk - 1u) * step;
    var s0 = 0.0;
    var s1 = 0.0;
    var s2 = 0.0;
    var s3 = 0.0;
    for (var i = 0u; i < DH4; i++) {
      let qi = vec4<f32>(q[qb + i]);
      let ki = kvh * DH4 + i;
      s0 += dot(qi, vec4<f32>(kc[ki + r0]));
      s1 += dot(qi, vec4<f32>(kc[ki + r1]));
      s2 += dot(qi, vec4<f32>(kc[ki + r2]));
      s3 += dot(qi, vec4<f32>(kc[ki + r3]));
    }
    s0 *= p.scale;
    s1 = select(NEG, s1 * p.scale, j + 1u < nk);
    s2 = select(NEG, s2 * p.scale, j + 2u < nk);
    s3 = select(NEG, s3 * p.scale, j + 3u < nk);
    let mn = max(max(m, max(s0, s1)), max(s2, s3));
    let r = exp2(m - mn);
    let w0 = exp2(s0 - mn);
    let w1 = exp2(s1 - mn);
    let w2 = exp2(s2 - mn);
    let w3 = exp2(s3 - mn);
    m = mn;
    l = l * r + (w0 + w1) + (w2 + w3);
    o0 = weigh(o0, r, vb + r0, vb + r1, vb + r2, vb + r3, w0, w1, w2, w3);
    o1 = weigh(o1, r, vb + r0 + min(1u, e), vb + r1 + min(1u, e), vb + r2 + min(1u, e), vb + r3 + min(1u, e), w0, w1, w2, w3);
    o2 = weigh(o2, r, vb + r0 + min(2u, e), vb + r1 + min(2u, e), vb + r2 + min(2u, e), vb + r3 + min(2u, e), w0, w1, w2, w3);
    o3 = weigh(o3, r, vb + r0 + min(3u, e), vb + r1 + min(3u, e), vb + r2 + min(3u, e), vb + r3 + min(3u, e), w0, w1, w2, w3);
    o4 = weigh(o4, r, vb + r0 + min(4u, e), vb + r1 + min(4u, e), vb + r2 + min(4u, e), vb + r3 + min(4u, e), w0, w1, w2, w3);
    o5 = weigh(o5, r, vb + r0 + min(5u, e), vb + r1 + min(5u, e), vb + r2 + min(5u, e), vb + r3 + min(5u, e), w0, w1, w2, w3);
    o6 = weigh(o6, r, vb + r0 + min(6u, e), vb + r1 + min(6u, e), vb + r2 + min(6u, e), vb + r3 + min(6u, e), w0, w1, w2, w3);
    o7 = weigh(o7, r, vb + r0 + min(7u, e), vb + r1 + min(7u, e), vb + r2 + min(7u, e), vb + r3 + min(7u, e), w0, w1, w2, w3);
    o8 = weigh(o8, r, vb + r0 + min(8u, e), vb + r1 + min(8u, e), vb + r2 + min(8u, e), vb + r3 + min(8u, e), w0, w1, w2, w3);
    o9 = weigh(o9, r, vb + r0 + min(9u, e), vb + r1 + min(9u, e), vb + r2 + min(9u, e), vb + r3 + min(9u, e), w0, w1, w2, w3);
    o10 = weigh(o10, r, vb + r0 + min(10u, e), vb + r1 + min(10u, e), vb + r2 + min(10u, e), vb + r3 + min(10u, e), w0, w1, w2, w3);
    o11 = weigh(o11, r, vb + r0 + min(11u, e), vb + r1 + min(11u, e), vb + r2 + min(11u, e), vb + r3 + min(11u, e), w0, w1, w2, w3);
    o12 = weigh(o12, r, vb + r0 + min(12u, e), vb + r1 + min(12u, e), vb + r2 + min(12u, e), vb + r3 + min(12u, e), w0, w1, w2, w3);
    o13 = weigh(o13, r, vb + r0 + min(13u, e), vb + r1 + min(13u, e), vb + r2 + min(13u, e), vb + r3 + min(13u, e), w0, w1, w2, w3);
    o14 = weigh(o14, r, vb + r0 + min(14u, e), vb + r1 + min(14u, e), vb + r2 + min(14u, e), vb + r3 + min(14u, e), w0, w1, w2, w3);
    o15 = weigh(o15, r, vb + r0 + min(15u, e), vb + r1 + min(15u, e), vb + r2 + min(15u, e), vb + r3 + min(15u, e), w0, w1, w2, w3);
  }
  let ob = (t * p.H + h) * DH4 + d;
  let inv = 1.0 / l;
  out[ob] = vec4<T>(o0 * inv);
  if (e >= 1u) { out[ob + 1u] = vec4<T>(o1 * inv); }
  if (e >= 2u) { out[ob + 2u] = vec4<T>(o2 * inv); }
  if (e >= 3u) { out[ob + 3u] = vec4<T>(o3 * inv); }
  if (e >= 4u) { out[ob + 4u] = vec4<T>(o4 * inv); }
  if (e >= 5u) { out[ob + 5u] = vec4<T>(o5 * inv); }
  if (e >= 6u) { out[ob + 6u] = vec4<T>(o6 * inv); }
  if (e >= 7u) { out[ob + 7u] = vec4<T>(o7 * inv); }
  if (e >= 8u) { out[ob + 8u] = vec4<T>(o8 * inv); }
  if (e >= 9u) { out[ob + 9u] = vec4<T>(o9 * inv); }
  if (e >= 10u) { out[ob + 10u] = vec4<T>(o10 * inv); }
  if (e >= 11u) { out[ob + 11u] = vec4<T>(o11 * inv); }
  if (e >= 12u) { out[ob + 12u] = vec4<T>(o12 * inv); }
  if (e >= 13u) { out[ob + 13u] = vec4<T>(o13 * inv); }
  if (e >= 14u) { out[ob + 14u] = vec4<T>(o14 * inv); }
  if (e >= 15u) { out[ob + 15u] = vec4<T>(o15 * inv); }
}

// One vec4 lane's running sum rescaled by r, plus 4 keys' weighted values.
fn weigh(o: vec4<f32>, r: f32, a: u32, b: u32, c: u32, d: u32, w0: f32, w1: f32, w2: f32, w3: f32) -> vec4<f32> {
  return o * r + w0 * vec4<f32>(vc[a]) + w1 * vec4<f32>(vc[b]) + w2 * vec4<f32>(vc[c]) + w3 * vec4<f32>(vc[d]);
}
