// retention_chunkwise: the carry pass of RetNet retention's chunkwise form
// (Sun et al. 2023, eq. 7; fla's chunk_retention). The whole form, per head h
// with gamma = decay[h], over chunks c of `chunk` tokens (the last may be shorter,
// len_c tokens):
//   (a) retention_state.wgsl, parallel over chunks: each chunk's own share
//       dS_c = Σ_{m in c} gamma^(len_c-1-j) k_mᵀ v_m  (j = m's place in the chunk)
//   (b) this pass, parallel over (h, i, j) and in order over the chunks only:
//       S_c = gamma^len_c S_{c-1} + dS_c, writing each chunk's start state S_{c-1}
//       over its dS_c, and the final state into `state`;
//   (c) retention_parallel.wgsl over the chunks: the intra-chunk parallel form
//       plus scale gamma^(j+1) q_m S_{c-1}.
// Nothing is divided by a power of gamma (which overflows for long chunks and
// small gamma): every power is a positive exponent of gamma <= 1.
//
// decay: (H) f32; state: (H, Dk, Dv) f32, S before the call, rewritten with S
// after it; scratch: (chunks', H, Dk, Dv) f32, chunks' >= chunks: record c holds
// dS_c on entry and S_{c-1} on exit. One invocation per vec4 of S: the only
// writer of its slots.
// Needs: common.wgsl, precise_log2.wgsl

// size4: vec4s of one state, H Dk Dv / 4; head4: vec4s of one head's, Dk Dv / 4
struct Params { tokens: u32, chunk: u32, chunks: u32, size4: u32, head4: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> decay: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> scratch: array<vec4<f32>>;

override WG: u32 = 64;

const U = 8u;  // chunks whose loads are in flight together

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let x = group_index(wid, nwg) * WG + lid;
  if (x >= p.size4) { return; }
  let lg = precise_log2(decay[x / p.head4]);
  let keep = exp2(f32(p.chunk) * lg);  // gamma^chunk, for every chunk but a short last one
  var s = state[x];
  // U chunks at a time, all their loads issued before any store (selective_scan_carry.wgsl says why)
  for (var c0 = 0u; c0 < p.chunks; c0 += U) {
    var ds: array<vec4<f32>, U>;
    for (var a = 0u; a < U; a++) { ds[a] = scratch[min(c0 + a, p.chunks - 1u) * p.size4 + x]; }
    for (var a = 0u; a < U; a++) {
      let c = c0 + a;
      if (c < p.chunks) {
        scratch[c * p.size4 + x] = s;
        let len = min(p.chunk, p.tokens - c * p.chunk);
        s = select(exp2(f32(len) * lg), keep, len == p.chunk) * s + ds[a];
      }
    }
  }
  state[x] = s;
}
