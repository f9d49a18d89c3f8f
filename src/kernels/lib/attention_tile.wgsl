// attention_tile.wgsl: the key-tile step of attn_prefill and attn_decode, an
// online softmax over tiles of BK keys (FlashAttention, Dao et al. 2022,
// Algorithm 1) for the QR query rows a workgroup holds:
//   (A) K tile -> KV   (B) scores -> S, masked   (C) row max, rescale factor; V tile -> KV
//   (D) S = exp2(S - max)   (E) acc = acc * alpha + S · V, row sums
// Scores live in the log2 domain: the queries carry scale * log2(e).
// The kernel defines p (with Hkv), kc, vc, the overrides WG, BK, DH and QR
// (query rows per workgroup), and visible(i, key): whether row i of the tile
// may see absolute key `key` (its causal mask).

// Derived sizes (never set from outside).
override DH4: u32 = DH / 4u;
override KS: u32 = DH4 + 1u;                  // row stride of KV in vec4: one pad vec4 spreads rows over banks
override TR: u32 = min(QR, WG / DH4);         // PV phase: row lanes
override KL: u32 = WG / (DH4 * TR);           // PV phase: key lanes (> 1 when QR * DH4 < WG, e.g. one head)
override RPT: u32 = (QR + TR - 1u) / TR;      // PV phase: rows per thread
override SR: u32 = WG / BK;                   // score phase: row lanes
override RS: u32 = (QR + SR - 1u) / SR;       // score phase: rows per thread

const RPT_MAX = 8u;  // register arrays need constant sizes; the kernels' .ts keep RPT, RS within these
const RS_MAX = 8u;
const NEG: f32 = -1.0e30;  // a masked score; finite, since WGSL does not promise IEEE infinities

var<workgroup> Qs: array<vec4<f32>, QR * DH4>;        // the query rows, pre-scaled
var<workgroup> KV: array<vec4<f32>, max(BK * KS, WG)>; // K tile, then V tile; at the end, key-lane partial sums
var<workgroup> S: array<f32, QR * BK>;                // scores, then probabilities
var<workgroup> M: array<f32, QR>;                     // running row max (log2 domain)
var<workgroup> Alpha: array<f32, QR>;                 // rescale of this tile; at the end, the kernel's use

// What a thread does in each phase.
struct Roles {
  sk: u32,  // score phase: this thread's key ...
  sr: u32,  // ... and first row
  dl: u32,  // PV phase: this thread's vec4 of the head dim ...
  rl: u32,  // ... first row ...
  kl: u32,  // ... and key lane
}

fn roles(tid: u32) -> Roles {
  return Roles(tid % BK, tid / BK, tid % DH4, (tid / DH4) % TR, tid / (DH4 * TR));
}

// One tile: keys [j0, j0 + jn) of KV head kvh (jn <= BK; keys past it are
// zeros, never cache reads) into the running max M, the row sum l of row tid
// (tid < QR) and the weighted values acc of this thread's PV rows.
fn attend_tile(j0: u32, jn: u32, kvh: u32, tid: u32, ro: Roles, acc: ptr<function, array<vec4<f32>, RPT_MAX>>, l: ptr<function, f32>) {
  // (A) the K tile
  for (var i = tid; i < BK * DH4; i += WG) {
    let j = i / DH4;
    var v = vec4<f32>(0.0);
    if (j < jn) { v = vec4<f32>(kc[((j0 + j) * p.Hkv + kvh) * DH4 + i % DH4]); }
    KV[j * KS + i % DH4] = v;
  }
  workgroupBarrier();

  // (B) scores of rows sr + SR*a against key sk, masked
  var s: array<f32, RS_MAX>;
  for (var d = 0u; d < DH4; d++) {
    let k = KV[ro.sk * KS + d];
    for (var a = 0u; a < RS; a++) {
      s[a] += dot(Qs[min(ro.sr + SR * a, QR - 1u) * DH4 + d], k);
    }
  }
  for (var a = 0u; a < RS; a++) {
    let i = ro.sr + SR * a;
    if (i < QR) {
      s[a] = select(NEG, s[a], ro.sk < jn && visible(i, j0 + ro.sk));
      S[i * BK + ro.sk] = s[a];
    }
  }
  workgroupBarrier();

  // (C) new row max and the factor that rescales what came before (0 on the
  // first tile, which always holds a key every row sees)
  if (tid < QR) {
    let mo = M[tid];
    var mx = mo;
    for (var j = 0u; j < jn; j++) { mx = max(mx, S[tid * BK + j]); }
    Alpha[tid] = exp2(mo - mx);
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
    let i = ro.sr + SR * a;
    if (i < QR) { S[i * BK + ro.sk] = exp2(s[a] - M[i]); }
  }
  workgroupBarrier();

  // (E) row sums, and acc = acc * alpha + P · V
  if (tid < QR) {
    var sum = 0.0;
    for (var j = 0u; j < jn; j++) { sum += S[tid * BK + j]; }
    *l = *l * Alpha[tid] + sum;
  }
  if (ro.kl < KL) {
    for (var r = 0u; r < RPT; r++) { (*acc)[r] *= Alpha[min(ro.rl + TR * r, QR - 1u)]; }
    for (var j = ro.kl; j < jn; j += KL) {
      let v = KV[j * KS + ro.dl];
      for (var r = 0u; r < RPT; r++) {
        (*acc)[r] += S[min(ro.rl + TR * r, QR - 1u) * BK + j] * v;
      }
    }
  }
  workgroupBarrier();
}

// Key lanes > 0 (only when KL > 1, and then RPT == 1) hand their sums to lane 0.
fn merge_key_lanes(ro: Roles, acc: ptr<function, array<vec4<f32>, RPT_MAX>>) {
  if (KL > 1u) {
    if (ro.kl > 0u && ro.kl < KL) { KV[((ro.kl - 1u) * TR + ro.rl) * DH4 + ro.dl] = (*acc)[0]; }
    workgroupBarrier();
    if (ro.kl == 0u) {
      for (var k = 1u; k < KL; k++) { (*acc)[0] += KV[((k - 1u) * TR + ro.rl) * DH4 + ro.dl]; }
    }
  }
}
