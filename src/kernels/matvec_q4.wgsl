// matvec_q4: y[n] = sum_k W[n, k] * x[k], W in 4-bit q4 (runtime/q4.ts): the
// decode path (one token). W[n, k] = m + q * d per group of G along K, so
//   y[n] = sum over chunks of 32 codes ( d * sum_k q[k] x[k]  +  m * sum_k x[k] )
// a chunk (one vec4<u32> of codes) always lies inside one group since 32 | G:
// one fma per code, the running sum of x (a vec4 add per 8 codes), and one
// fma per chunk for the scale and the min.
//
// Memory-bound on a GPU, so every weight byte is read once, 16 bytes at a
// time. A workgroup is WG / TPR teams of TPR lanes, one row per team; lane i
// reads chunks i, i + TPR, ... of its row, so a team's loads are TPR * 16
// consecutive bytes (TPR = 8: one 128-byte line). The TPR partial sums of a
// row meet in workgroup memory behind one barrier. TPR = 1 is a thread per
// row with no barrier (the branch is settled when the pipeline is built): on
// SwiftShader a barrier makes every invocation a coroutine, and TPR = 1 was
// 2-10x faster there than any TPR > 1 (matvec_q4.ts gives the figures).
// When K % 32 != 0 a row does not start on a 16-byte boundary: its chunks are
// then gathered word by word, and the last (K % 32) / 8 words (the tail) are
// read one per lane.
//
// p: rows = N, kw = K / 8, chunks = K / 32, tail = kw % 4, gpr = ceil(K / G) groups per row
// codes:  (N * K / 8) u32 as vec4<u32>, the packed codes (binding rounded up to 16 bytes)
// scales: (N, gpr) u32, pack2x16float(d, m)
// x: (K) as vec4<T> (K is a multiple of 8)
// y: (N)
// Needs: common.wgsl

struct Params { rows: u32, kw: u32, chunks: u32, tail: u32, gpr: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override WG: u32 = 128;  // threads per workgroup
override TPR: u32 = 8;   // lanes per row, a divisor of WG
override G: u32 = 32;    // quant group along K: 32, 64 or 128
override ROWS: u32 = WG / TPR; // rows per workgroup
var<workgroup> partial: array<f32, WG>;

// Word i of the codes.
fn word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// (sum_j q_j x[k + j], sum_j x[k + j]) over the 8 codes of word w, k = 8 * wi.
fn dot_word(w: u32, wi: u32) -> vec2<f32> {
  let lo = vec4<f32>(x[2u * wi]);
  let hi = vec4<f32>(x[2u * wi + 1u]);
  var s = f32(w & 15u) * lo.x;
  s = fma(f32((w >> 4u) & 15u), lo.y, s);
  s = fma(f32((w >> 8u) & 15u), lo.z, s);
  s = fma(f32((w >> 12u) & 15u), lo.w, s);
  s = fma(f32((w >> 16u) & 15u), hi.x, s);
  s = fma(f32((w >> 20u) & 15u), hi.y, s);
  s = fma(f32((w >> 24u) & 15u), hi.z, s);
  s = fma(f32(w >> 28u), hi.w, s);
  return vec2<f32>(s, dot(lo + hi, vec4<f32>(1.0)));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = lid % TPR;
  let first = group_index(wid, nwg) * ROWS; // first row of this workgroup
  let n = first + lid / TPR;                // this lane's row
  var acc = 0.0;
  if (n < p.rows) {
    let base = n * p.kw;   // first code word of row n
    let sbase = n * p.gpr; // first scale of row n
    // Full chunks: 32 codes, one (d, m). Rows start on a 16-byte boundary
    // when K % 32 == 0 (a uniform branch); otherwise gather word by word.
    if (p.tail == 0u) {
      for (var c = lane; c < p.chunks; c += TPR) {
        let q = codes[base / 4u + c];
        let s = dot_word(q.x, 4u * c) + dot_word(q.y, 4u * c + 1u) + dot_word(q.z, 4u * c + 2u) + dot_word(q.w, 4u * c + 3u);
        let dm = unpack2x16float(scales[sbase + 32u * c / G]);
        acc += dm.x * s.x + dm.y * s.y;
      }
    } else {
      for (var c = lane; c < p.chunks; c += TPR) {
        let i = base + 4u * c;
        let s = dot_word(word(i), 4u * c) + dot_word(word(i + 1u), 4u * c + 1u) + dot_word(word(i + 2u), 4u * c + 2u) + dot_word(word(i + 3u), 4u * c + 3u);
        let dm = unpack2x16float(scales[sbase + 32u * c / G]);
        acc += dm.x * s.x + dm.y * s.y;
      }
    }
    // Tail (K % 32 != 0): word 4 * chunks + lane of the row, for lanes < tail.
    if (lane < p.tail) {
      let wi = 4u * p.chunks + lane;
      let s = dot_word(word(base + wi), wi);
      let dm = unpack2x16float(scales[sbase + 8u * wi / G]);
      acc += dm.x * s.x + dm.y * s.y;
    }
  }
  if (TPR == 1u) {
    if (n < p.rows) { y[n] = T(acc); }
    return;
  }
  // partial[r * TPR + lane] for row first + r: a row's partials are adjacent.
  partial[lid] = acc;
  workgroupBarrier();
  if (lid < ROWS && first + lid < p.rows) {
    var sum = 0.0;
    for (var i = 0u; i < TPR; i++) {
      sum += partial[lid * TPR + i];
    }
    y[first + lid] = T(sum);
  }
}
