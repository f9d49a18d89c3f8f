// attn_prefill: causal attention of T new queries against the KV cache, tiled
// with an online softmax (FlashAttention, Dao et al. 2022, Algorithm 1): no
// T×T score matrix exists anywhere, only a BQ×BK tile in workgroup memory.
// As Hugging Face Llama: out = softmax(q·kᵀ * scale, causal) · v per head,
// softmax in f32; query head h reads KV head h / G (G = H / Hkv, repeat_kv).
//
// q:   (T, H, Dh) row-major, read as vec4 (Dh % 4 == 0)
// kc:  (maxT, Hkv, Dh) the key cache, rows 0 .. pos0+T-1 written (rotary applied)
// vc:  (maxT, Hkv, Dh) the value cache, same rows
// out: (T, H, Dh)
// Query t sits at absolute position pos0 + t and sees keys 0 ..= pos0 + t;
// no row at or past pos0 + T is ever read.
//
// One workgroup per (tile of BQ query rows, KV head). The rows of a KV head are
// its (token t, query head g of its group) pairs, row = t * G + g: the G heads
// that share a K/V tile share the workgroup, so a short prompt fills the tile
// (T = 7, G = 4: 28 rows) and reads the cache once per KV head. Per tile of BK keys:
//   (A) K tile -> KV   (B) scores -> S, masked   (C) row max, rescale factor; V tile -> KV
//   (D) S = exp2(S - max)   (E) acc = acc * alpha + S · V, row sums
// Scores live in the log2 domain: scale carries log2(e), so exp2 replaces exp.
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

override WG: u32 = 128;  // threads; a multiple of BK
override BQ: u32 = 32;   // query rows per tile (<= WG)
override BK: u32 = 32;   // keys per tile
override DH: u32 = 64;   // head dim, a multiple of 4, DH / 4 <= WG

// Derived sizes (never set from outside).
override DH4: u32 = DH / 4u;
override KS: u32 = DH4 + 1u;                  // row stride of KV in vec4: one pad vec4 spreads rows over banks
override TR: u32 = min(BQ, WG / DH4);         // PV phase: row lanes
override KL: u32 = WG / (DH4 * TR);           // PV phase: key lanes (> 1 only for tiny BQ * DH4)
override RPT: u32 = (BQ + TR - 1u) / TR;      // PV phase: rows per thread
override SR: u32 = WG / BK;                   // score phase: row lanes
override RS: u32 = (BQ + SR - 1u) / SR;       // score phase: rows per thread

const RPT_MAX = 8u;  // register arrays need constant sizes; attn_prefill.ts keeps RPT, RS within these
const RS_MAX = 8u;
const NEG: f32 = -1.0e30;  // a masked score; finite, since WGSL does not promise IEEE infinities

var<workgroup> Qs: array<vec4<f32>, BQ * DH4>;        // the query rows, pre-scaled
var<workgroup> KV: array<vec4<f32>, max(BK * KS, WG)>; // K tile, then V tile; at the end, key-lane partial sums
var<workgroup> S: array<f32, BQ * BK>;                // scores, then probabilities
var<workgroup> M: array<f32, BQ>;                     // running row max (log2 domain)
var<workgroup> Alpha: array<f32, BQ>;                 // rescale of this tile; at the end, 1 / row sum

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let kvh = wid.y;
  let q0 = (nwg.x - 1u - wid.x) * BQ;  // first row; the last tiles see the most keys: start them first
  let rows = p.T * p.G;                // rows of this KV head
  let last = (min(q0 + BQ, rows) - 1u) / p.G;  // last token of the tile
  let kend = p.pos0 + last + 1u;       // the tile reads keys [0, kend)

  for (var i = tid; i < BQ * DH4; i += WG) {
    let r = q0 + i / DH4;
    var v = vec4<f32>(0.0);
    if (r < rows) { v = vec4<f32>(q[row_vec4(r, kvh) + i % DH4]) * p.scale; }
    Qs[i] = v;
  }
  if (tid < BQ) { M[tid] = NEG; }
  var l = 0.0;  // row sum of row tid (tid < BQ)

  let sk = tid % BK;              // score phase: this thread's key ...
  let sr = tid / BK;              // ... and first row
  let dl = tid % DH4;             // PV phase: this thread's vec4 of the head dim ...
  let rl = (tid / DH4) % TR;      // ... first row ...
  let kl = tid / (DH4 * TR);      // ... and key lane
  var s: array<f32, RS_MAX>;
  var acc: array<vec4<f32>, RPT_MAX>;

  for (var j0 = 0u; j0 < kend; j0 += BK) {
    let jn = min(BK, kend - j0);  // keys of this tile that exist
    // (A) the K tile; keys past kend are zeros, never cache reads
    for (var i = tid; i < BK * DH4; i += WG) {
      let j = i / DH4;
      var v = vec4<f32>(0.0);
      if (j < jn) { v = vec4<f32>(kc[((j0 + j) * p.Hkv + kvh) * DH4 + i % DH4]); }
      KV[j * KS + i % DH4] = v;
    }
    workgroupBarrier();

    // (B) scores of rows sr + SR*a against key sk, causal-masked
    for (var a = 0u; a < RS; a++) { s[a] = 0.0; }
    for (var d = 0u; d < DH4; d++) {
      let k = KV[sk * KS + d];
      for (var a = 0u; a < RS; a++) {
        s[a] += dot(Qs[min(sr + SR * a, BQ - 1u) * DH4 + d], k);
      }
    }
    for (var a = 0u; a < RS; a++) {
      let i = sr + SR * a;
      if (i < BQ) {
        let t = min(q0 + i, rows - 1u) / p.G;  // rows past the end mirror the last real one, and are not written
        s[a] = select(NEG, s[a], j0 + sk <= p.pos0 + t);
        S[i * BK + sk] = s[a];
      }
    }
    workgroupBarrier();

    // (C) new row max and the factor that rescales what came before
    if (tid < BQ) {
      let mo = M[tid];
      var mx = mo;
      for (var j = 0u; j < jn; j++) { mx = max(mx, S[tid * BK + j]); }
      Alpha[tid] = exp2(mo - mx);  // 0 on the first tile: key 0 is visible to every row
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
      if (i < BQ) { S[i * BK + sk] = exp2(s[a] - M[i]); }
    }
    workgroupBarrier();

    // (E) row sums, and acc = acc * alpha + P · V
    if (tid < BQ) {
      var sum = 0.0;
      for (var j = 0u; j < jn; j++) { sum += S[tid * BK + j]; }
      l = l * Alpha[tid] + sum;
    }
    if (kl < KL) {
      for (var r = 0u; r < RPT; r++) { acc[r] *= Alpha[min(rl + TR * r, BQ - 1u)]; }
      for (var j = kl; j < jn; j += KL) {
        let v = KV[j * KS + dl];
        for (var r = 0u; r < RPT; r++) {
          acc[r] += S[min(rl + TR * r, BQ - 1u) * BK + j] * v;
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
  if (tid < BQ) { Alpha[tid] = 1.0 / l; }
  workgroupBarrier();
  if (kl == 0u) {
    for (var r = 0u; r < RPT; r++) {
      let i = rl + TR * r;
      if (i < BQ && q0 + i < rows) { out[row_vec4(q0 + i, kvh) + dl] = vec4<T>(acc[r] * Alpha[i]); }
    }
  }
}

// The first vec4 of row r of KV head kvh in q and out: token r / G, query head kvh * G + r % G.
fn row_vec4(r: u32, kvh: u32) -> u32 {
  return ((r / p.G) * p.H + kvh * p.G + r % p.G) * DH4;
}
