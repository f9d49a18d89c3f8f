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
// part: (H, slots, stride) f32 records [o[0 .. Dh), m, l, ...]; o, m, l written when nchunks > 1
// out:  (H, Dh) written when nchunks == 1
//
// Grid: x = chunk, y = (KV head, group of GB query heads). Inside a chunk the
// keys go in tiles of BK with an online softmax (lib/attention_tile.wgsl, as
// attn_prefill.wgsl, with no mask but the chunk's end).
// Scores live in the log2 domain: scale carries log2(e). m is stored in that domain.
// Needs: attention_tile.wgsl

struct Params {
  H: u32,        // query heads
  Hkv: u32,      // key/value heads
  G: u32,        // H / Hkv
  ngroups: u32,  // groups of GB heads per KV head: ceil(G / GB)
  len: u32,      // valid keys
  chunk: u32,    // keys per chunk, a multiple of BK
  nchunks: u32,  // ceil(len / chunk)
  slots: u32,    // chunks the partials buffer holds per head
  stride: u32,   // floats per record (Dh + 2, and room the thread form uses)
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

override QR: u32 = GB;   // query rows per workgroup (lib/attention_tile.wgsl)

// Every cached key of the chunk is visible to the new queries.
fn visible(i: u32, key: u32) -> bool {
  return true;
}

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

  let ro = roles(tid);
  var acc: array<vec4<f32>, RPT_MAX>;
  for (var j0 = c0; j0 < c1; j0 += BK) {
    attend_tile(j0, min(BK, c1 - j0), kvh, tid, ro, &acc, &l);
  }
  merge_key_lanes(ro, &acc);
  if (tid < GB) { Alpha[tid] = l; }
  workgroupBarrier();
  if (ro.kl != 0u) { return; }
  for (var r = 0u; r < RPT; r++) {
    let i = ro.rl + TR * r;
    if (i >= ng) { continue; }
    let h = h0 + i;
    if (p.nchunks == 1u) {
      out[h * DH4 + ro.dl] = vec4<T>(acc[r] / Alpha[i]);
    } else {
      let rec = (h * p.slots + c) * p.stride;
      let o = acc[r];
      part[rec + ro.dl * 4u] = o.x;
      part[rec + ro.dl * 4u + 1u] = o.y;
      part[rec + ro.dl * 4u + 2u] = o.z;
      part[rec + ro.dl * 4u + 3u] = o.w;
      if (ro.dl == 0u) {
        part[rec + DH] = M[i];
        part[rec + DH + 1u] = Alpha[i];
      }
    }
  }
}
