// attn_decode: one new query per head against the KV cache, split over the
// cached sequence in chunks (flash-decoding, Dao et al. 2023): each workgroup
// reduces one chunk of keys for a group of query heads that share a KV head,
// to a partial (max m, sum l, weighted values o) per (head, chunk);
// attn_decode_combine.wgsl merges the chunks exactly (log-sum-exp). With one
// chunk the workgroup writes the normalised output itself and no combine runs.
// Semantics of Hugging Face Llama: softmax(q·kᵀ * scale) · v over keys 0 .. len-1,
// query head h reads KV head h / G (G = H / Hkv); softmax in f32.
//
// q:    (H, Dh) row-major, read as vec4 (Dh % 4 == 0)
// kc:   (maxT, Hkv, Dh) the key cache, rows 0 .. len-1 written (rotary applied)
// vc:   (maxT, Hkv, Dh) the value cache, same rows; rows >= len are never read
// part: (H, slots, Dh + 2) f32 partials, record [o[0 .. Dh), m, l]; written when nchunks > 1
// out:  (H, Dh) written when nchunks == 1
//
// Grid: x = chunk, y = (KV head, group of GB query heads). Inside a chunk the
// keys go in tiles of BK with an online softmax, as attn_prefill.wgsl:
//   (A) K tile -> KV   (B) scores -> S   (C) row max, rescale; V tile -> KV
//   (D) S = exp2(S - max)   (E) acc = acc * alpha + S · V, row sums
// Scores live in the log2 domain: scale carries log2(e). m is stored in that domain.
// Needs: nothing from lib/.

struct Params {
  H: u32,        // query heads
  Hkv: u32,      // key/value heads
  G: u32,        // H / Hkv
  ngroups: u32,  // groups of GB heads per KV head: ceil(G / GB)
  len: u32,      // valid keys
  chunk: u32,    // keys per chunk, a multiple of BK
  nchunks: u32,  // ceil(len / chunk)
  slots: u32,    // chunks the partials buffer holds per head
  scale: f32,    // score scale * log2(e)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<T>>;

override WG: u32 = 128;  // threads; a multiple of BK
override GB: u32 = 4;    // query heads per workgroup (<= WG)
override BK: u32 = 32;   // keys per tile
override DH: u32 = 64;   // head dim, a multiple of 4, DH / 4 <= WG

// Derived sizes (never set from outside).
override DH4: u32 = DH / 4u;
override KS: u32 = DH4 + 1u;                  // row stride of KV in vec4: one pad vec4 spreads rows over banks
override TR: u32 = min(GB, WG / DH4);         // PV phase: row (head) lanes
override KL: u32 = WG / (DH4 * TR);           // PV phase: key lanes (> 1 when GB * DH4 < WG, e.g. one head)
override RPT: u32 = (GB + TR - 1u) / TR;      // PV phase: rows per thread
override SR: u32 = WG / BK;                   // score phase: row lanes
override RS: u32 = (GB + SR - 1u) / SR;       // score phase: rows per thread

const RPT_MAX = 8u;  // register arrays need constant sizes; attn_decode.ts keeps RPT, RS within these
const RS_MAX = 8u;
const NEG: f32 = -1.0e30;  // a masked score; finite, since WGSL does not promise IEEE infinities

var<workgroup> Qs: array<vec4<f32>, GB * DH4>;        // the queries of the group, pre-scaled
var<workgroup> KV: array<vec4<f32>, max(BK * KS, WG)>; // K tile, then V tile; at the end, key-lane partial sums
var<workgroup> S: array<f32, GB * BK>;                // scores, then probabilities
var<workgroup> M: array<f32, GB>;                     // running max per head (log2 domain)
var<workgroup> Alpha: array<f32, GB>;                 // rescale of this tile; at the end, the row sums

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  let kvh = wid.y / p.ngroups;
  let g0 = (wid.y % p.ngroups) * GB;   // first head of the group, within the KV head's G
  let ng = min(GB, p.G - g0);          // heads of this group that exist
  let h0 = kvh * p.G + g0;             // query head of row 0
  let c0 = c * p.chunk;
  let c1 = min(c0 + p.chunk, p.len);   // this chunk's keys: [c0, c1)

  for (var i = tid; i < GB * DH4; i += WG) {
    var v = vec4<f32>(0.0);
    if (i / DH4 < ng) { v = vec4<f32>(q[h0 * DH4 + i]) * p.scale; }
    Qs[i] = v;
  }
  if (tid < GB) { M[tid] = NEG; }
  var l = 0.0;  // row sum of row tid (tid < GB)

  let sk = tid % BK;              // score phase: this thread's key ...
  let sr = tid / BK;              // ... and first row
  let dl = tid % DH4;             // PV phase: this thread's vec4 of the head dim ...
  let rl = (tid / DH4) % TR;      // ... first row ...
  let kl = tid / (DH4 * TR);      // ... and key lane
  var s: array<f32, RS_MAX>;
  var acc: array<vec4<f32>, RPT_MAX>;

  for (var j0 = c0; j0 < c1; j0 += BK) {
    let jn = min(BK, c1 - j0);  // keys of this tile that exist
    // (A) the K tile; keys past the chunk are zeros, never cache reads
    for (var i = tid; i < BK * DH4; i += WG) {
      let j = i / DH4;
      var v = vec4<f32>(0.0);
      if (j < jn) { v = vec4<f32>(kc[((j0 + j) * p.Hkv + kvh) * DH4 + i % DH4]); }
      KV[j * KS + i % DH4] = v;
    }
    workgroupBarrier();

    // (B) scores of rows sr + SR*a against key sk; keys past the chunk masked
    for (var a = 0u; a < RS; a++) { s[a] = 0.0; }
    for (var d = 0u; d < DH4; d++) {
      let k = KV[sk * KS + d];
      for (var a = 0u; a < RS; a++) {
        s[a] += dot(Qs[min(sr + SR * a, GB - 1u) * DH4 + d], k);
      }
    }
    for (var a = 0u; a < RS; a++) {
      let i = sr + SR * a;
      if (i < GB) {
        s[a] = select(NEG, s[a], sk < jn);
        S[i * BK + sk] = s[a];
      }
    }
    workgroupBarrier();

    // (C) new row max and the factor that rescales what came before
    if (tid < GB) {
      let mo = M[tid];
      var mx = mo;
      for (var j = 0u; j < jn; j++) { mx = max(mx, S[tid * BK + j]); }
      Alpha[tid] = exp2(mo - mx);  // 0 on the first tile, which always has a valid key
      M[tid] = mx;
    }
    for (var i = tid; i < BK * DH4; i += WG) {
      let j = i / DH4;
      var v = vec4<f32>(0.0);
      if (j < jn) { v = vec4<f32>(vc[((j0 + j) * p.Hkv + kvh) * DH4 + i % DH4]); }
      KV[j * KS + i % DH4] = v;
    }
    workgroupBarrier();

    // (D) probabilities (unnormalised); a masked score gives exactly 0
    for (var a = 0u; a < RS; a++) {
      let i = sr + SR * a;
      if (i < GB) { S[i * BK + sk] = exp2(s[a] - M[i]); }
    }
    workgroupBarrier();

    // (E) row sums, and acc = acc * alpha + P · V
    if (tid < GB) {
      var sum = 0.0;
      for (var j = 0u; j < jn; j++) { sum += S[tid * BK + j]; }
      l = l * Alpha[tid] + sum;
    }
    if (kl < KL) {
      for (var r = 0u; r < RPT; r++) { acc[r] *= Alpha[min(rl + TR * r, GB - 1u)]; }
      for (var j = kl; j < jn; j += KL) {
        let v = KV[j * KS + dl];
        for (var r = 0u; r < RPT; r++) {
          acc[r] += S[min(rl + TR * r, GB - 1u) * BK + j] * v;
        }
      }
    }
    workgroupBarrier();
  }

  // Key lanes > 0 (only when KL > 1, and then RPT == 1) hand their sums to lane 0.
  if (KL > 1u) {
    if (kl > 0u && kl < KL) { KV[((kl - 1u) * TR + rl) * DH4 + dl] = acc[0]; }
    workgroupBarrier();
    if (kl == 0u) {
      for (var k = 1u; k < KL; k++) { acc[0] += KV[((k - 1u) * TR + rl) * DH4 + dl]; }
    }
  }
  if (tid < GB) { Alpha[tid] = l; }
  workgroupBarrier();
  if (kl != 0u) { return; }
  for (var r = 0u; r < RPT; r++) {
    let i = rl + TR * r;
    if (i >= ng) { continue; }
    let h = h0 + i;
    if (p.nchunks == 1u) {
      out[h * DH4 + dl] = vec4<T>(acc[r] / Alpha[i]);
    } else {
      let rec = (h * p.slots + c) * (DH + 2u);
      let o = acc[r];
      part[rec + dl * 4u] = o.x;
      part[rec + dl * 4u + 1u] = o.y;
      part[rec + dl * 4u + 2u] = o.z;
      part[rec + dl * 4u + 3u] = o.w;
      if (dl == 0u) {
        part[rec + DH] = M[i];
        part[rec + DH + 1u] = Alpha[i];
      }
    }
  }
}
