// retention_parallel: the outputs of RetNet retention in its parallel form
// (Sun et al. 2023, eq. 5), tiled like attention prefill: per head h, with
// gamma = decay[h] and the tokens split into chunks of `chunk`,
//   o[n] = scale · Σ_{cs <= m <= n} gamma^(n-m) (q_n · k_m) v_m
//        + scale · gamma^(n-cs+1) (q_n S_c)
// where cs is the first token of n's chunk c and S_c the state before it. The
// parallel form is one chunk (chunk = T, S_0 = the carried state); the
// chunkwise form (retention_chunkwise.ts) runs this kernel over chunks of 64
// with the start states its carry pass wrote. The decay mask is computed on
// the fly, exp2((n - m) log2 gamma): no T × T matrix exists anywhere, only a
// 32 × 32 tile of weighted scores in workgroup memory.
//
// q, k: (T, H, Dk); v, out: (T, H, Dv); all read as vec4 (Dk, Dv % 4 == 0);
// decay: (H) f32; starts: (chunks, H, Dk, Dv) f32, the state before each chunk.
//
// One workgroup per (head, tile of 32 query rows, block of 32 NV columns of
// o); 64 threads as 8 × 8, each holding 4 rows × 4 columns of scores and 4
// rows × 4 NV columns of o. A tile of rows never straddles a chunk (the
// chunk length is a multiple of 32, or the whole call). Dk goes through
// workgroup memory 32 at a time, and the columns 32 at a time:
//   (1) acc = q S_c             Q tile [d][row] × S tile [d][col]
//   (2) per key tile m0 = cs, cs + 32, ... up to the tile's last row:
//       P = (Q Kᵀ) ⊙ mask       Q tile [d][row] × K tile [d][key]
//       acc += P V              P [key][row] × V tile [key][col]
// Scores use every d of a column block: NV > 1 spreads that cost over more
// columns (Dv = 512 computes each score 4 times, not 16).
// Needs: common.wgsl, precise_log2.wgsl

struct Params { tokens: u32, H: u32, Dk: u32, Dv: u32, chunk: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read> starts: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<T>>;

override NV: u32 = 1;  // 32-column blocks per workgroup (1 .. NV_MAX)

const B = 32u;         // query rows, keys, columns and Dk per tile
const B4 = 8u;         // B / 4: thread lanes along each side of a tile
const WG = 64u;        // B4 × B4 threads
const NV_MAX = 4u;

var<workgroup> Qs: array<vec4<f32>, B * B4>;  // Q tile, d-major: Qs[d * B4 + i / 4][i % 4] = q[n0 + i, d0 + d]
var<workgroup> KV: array<vec4<f32>, B * B4>;  // K tile [d][key / 4] as Qs; S tile [d][col / 4]; V tile [key][col / 4]
var<workgroup> Ps: array<vec4<f32>, B * B4>;  // weighted scores, key-major: Ps[m * B4 + i / 4][i % 4]

// Q tile rows n0 .. n0 + 31, dims d0 .. d0 + 31, transposed into Qs; zeros past T and Dk.
fn load_q(tid: u32, head: u32, n0: u32, d0: u32) {
  let DK4 = p.Dk / 4u;
  for (var x = tid; x < B * B4; x += WG) {
    let i = x / B4;
    let d4 = d0 / 4u + x % B4;
    var val = vec4<f32>(0.0);
    if (n0 + i < p.tokens && d4 < DK4) { val = vec4<f32>(q[((n0 + i) * p.H + head) * DK4 + d4]); }
    for (var e = 0u; e < 4u; e++) { Qs[((x % B4) * 4u + e) * B4 + i / 4u][i % 4u] = val[e]; }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let DK4 = p.Dk / 4u;
  let DV4 = p.Dv / 4u;
  let nq = (p.tokens + B - 1u) / B;           // query tiles
  let nv = (DV4 + B4 * NV - 1u) / (B4 * NV);  // column blocks
  let g = group_index(wid, nwg);
  let vb = g % nv;
  let qt = (g / nv) % nq;
  let head = g / (nv * nq);
  if (head >= p.H) { return; }                // a spare workgroup of a grid split over x and y
  let n0 = qt * B;                            // first query row of the tile
  let c = n0 / p.chunk;                       // its chunk ...
  let cs = c * p.chunk;                       // ... which starts at token cs
  let ti = tid / B4;                          // rows 4 ti .. 4 ti + 3 of the tile
  let tj = tid % B4;                          // keys, and vec4 columns, tj (+ B4 u)
  let lg = precise_log2(decay[head]);
  let qResident = p.Dk <= B;                  // one Q tile holds every d: load it once

  var acc: array<vec4<f32>, 4u * NV_MAX>;     // acc[4 u + r]: row 4 ti + r, vec4 column j0 + tj + B4 u
  let j0 = vb * B4 * NV;

  // (1) acc = q S_c: the state before the chunk, 32 rows of S at a time
  if (qResident) { load_q(tid, head, n0, 0u); }
  for (var d0 = 0u; d0 < p.Dk; d0 += B) {
    if (!qResident) { load_q(tid, head, n0, d0); }
    for (var u = 0u; u < NV; u++) {
      for (var x = tid; x < B * B4; x += WG) {
        let d = d0 + x / B4;
        let j4 = j0 + B4 * u + x % B4;
        var val = vec4<f32>(0.0);
        if (d < p.Dk && j4 < DV4) { val = starts[((c * p.H + head) * p.Dk + d) * DV4 + j4]; }
        KV[x] = val;
      }
      workgroupBarrier();
      for (var d = 0u; d < B; d++) {
        let qv = Qs[d * B4 + ti];
        let sv = KV[d * B4 + tj];
        for (var r = 0u; r < 4u; r++) { acc[4u * u + r] += qv[r] * sv; }
      }
      workgroupBarrier();
    }
  }
  for (var r = 0u; r < 4u; r++) {
    let f = p.scale * exp2(f32(n0 + 4u * ti + r - cs + 1u) * lg);  // scale gamma^(n - cs + 1)
    for (var u = 0u; u < NV; u++) { acc[4u * u + r] *= f; }
  }

  // (2) the chunk's keys up to the tile's last row, 32 at a time
  let mend = min(n0 + B, p.tokens);
  for (var m0 = cs; m0 < mend; m0 += B) {
    var sc: array<vec4<f32>, 4>;  // sc[r][e]: row 4 ti + r, key m0 + 4 tj + e
    // Zeroed by hand: WGSL zeroes a var declared without an initializer each time the loop
    // body runs, but Dawn on SwiftShader kept the previous iteration's value.
    for (var r = 0u; r < 4u; r++) { sc[r] = vec4<f32>(0.0); }
    for (var d0 = 0u; d0 < p.Dk; d0 += B) {
      if (!qResident) { load_q(tid, head, n0, d0); }
      for (var x = tid; x < B * B4; x += WG) {
        let m = x / B4;
        let d4 = d0 / 4u + x % B4;
        var val = vec4<f32>(0.0);
        if (m0 + m < p.tokens && d4 < DK4) { val = vec4<f32>(k[((m0 + m) * p.H + head) * DK4 + d4]); }
        for (var e = 0u; e < 4u; e++) { KV[((x % B4) * 4u + e) * B4 + m / 4u][m % 4u] = val[e]; }
      }
      workgroupBarrier();
      for (var d = 0u; d < B; d++) {
        let qv = Qs[d * B4 + ti];
        let kv = KV[d * B4 + tj];
        for (var r = 0u; r < 4u; r++) { sc[r] += qv[r] * kv; }
      }
      workgroupBarrier();
    }
    // the decay mask, scale folded in: scale gamma^(n - m) for m <= n, else 0
    for (var e = 0u; e < 4u; e++) {
      let m = m0 + 4u * tj + e;
      var col = vec4<f32>(0.0);
      for (var r = 0u; r < 4u; r++) {
        let n = n0 + 4u * ti + r;
        if (m <= n) { col[r] = sc[r][e] * p.scale * exp2(f32(n - m) * lg); }
      }
      Ps[(4u * tj + e) * B4 + ti] = col;
    }
    for (var u = 0u; u < NV; u++) {
      for (var x = tid; x < B * B4; x += WG) {
        let m = m0 + x / B4;
        let j4 = j0 + B4 * u + x % B4;
        var val = vec4<f32>(0.0);
        if (m < p.tokens && j4 < DV4) { val = vec4<f32>(v[(m * p.H + head) * DV4 + j4]); }
        KV[x] = val;
      }
      workgroupBarrier();
      for (var m = 0u; m < B; m++) {
        let pv = Ps[m * B4 + ti];
        let vv = KV[m * B4 + tj];
        for (var r = 0u; r < 4u; r++) { acc[4u * u + r] += pv[r] * vv; }
      }
      workgroupBarrier();
    }
  }

  for (var r = 0u; r < 4u; r++) {
    let n = n0 + 4u * ti + r;
    if (n >= p.tokens) { break; }
    for (var u = 0u; u < NV; u++) {
      let j4 = j0 + tj + B4 * u;
      if (j4 < DV4) { out[(n * p.H + head) * DV4 + j4] = vec4<T>(acc[4u * u + r]); }
    }
  }
}
