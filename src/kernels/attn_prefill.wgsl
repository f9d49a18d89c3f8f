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
// (T = 7, G = 4: 28 rows) and reads the cache once per KV head. The tiles of
// BK keys go through lib/attention_tile.wgsl, with the causal mask below.
// Scores live in the log2 domain: scale carries log2(e), so exp2 replaces exp.
// Needs: attention_tile.wgsl

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

override QR: u32 = BQ;   // query rows per workgroup (lib/attention_tile.wgsl)

var<private> q0: u32;    // first row of this workgroup's tile

// Causal mask: row i of the tile (token (q0 + i) / G) sees keys up to its own
// position; rows past the end mirror the last real one, and are not written.
fn visible(i: u32, key: u32) -> bool {
  let t = min(q0 + i, p.T * p.G - 1u) / p.G;
  return key <= p.pos0 + t;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let kvh = wid.y;
  let first = (nwg.x - 1u - wid.x) * BQ;  // first row; the last tiles see the most keys: start them first
  q0 = first;                          // for visible() (a let, not q0, keeps the loop bound uniform)
  let rows = p.T * p.G;                // rows of this KV head
  let last = (min(first + BQ, rows) - 1u) / p.G;  // last token of the tile
  let kend = p.pos0 + last + 1u;       // the tile reads keys [0, kend)

  for (var i = tid; i < BQ * DH4; i += WG) {
    let r = first + i / DH4;
    var v = vec4<f32>(0.0);
    if (r < rows) { v = vec4<f32>(q[row_vec4(r, kvh) + i % DH4]) * p.scale; }
    Qs[i] = v;
  }
  if (tid < BQ) { M[tid] = NEG; }
  var l = 0.0;  // row sum of row tid (tid < BQ)

  let ro = roles(tid);
  var acc: array<vec4<f32>, RPT_MAX>;
  for (var j0 = 0u; j0 < kend; j0 += BK) {
    attend_tile(j0, min(BK, kend - j0), kvh, tid, ro, &acc, &l);
  }
  merge_key_lanes(ro, &acc);
  if (tid < BQ) { Alpha[tid] = 1.0 / l; }
  workgroupBarrier();
  if (ro.kl == 0u) {
    for (var r = 0u; r < RPT; r++) {
      let i = ro.rl + TR * r;
      if (i < BQ && first + i < rows) { out[row_vec4(first + i, kvh) + ro.dl] = vec4<T>(acc[r] * Alpha[i]); }
    }
  }
}

// The first vec4 of row r of KV head kvh in q and out: token r / G, query head kvh * G + r % G.
fn row_vec4(r: u32, kvh: u32) -> u32 {
  return ((r / p.G) * p.H + kvh * p.G + r % p.G) * DH4;
}
