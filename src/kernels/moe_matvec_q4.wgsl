// moe_matvec_q4: the decode path (one token) of the experts: for each of the
// k routed slots j, y[j, n] = sum_c W_e[n, c] * x_j[c] with e = ids[j], W the
// E experts stacked as one q4 matrix (E * N, K) (runtime/q4.ts; expert e is
// rows e * N .. e * N + N, its codes and scales where a plain (N, K) weight
// would have them, shifted by e * N rows): only the chosen experts' rows are read.
// x_j is one vector shared by the slots (gate and up: the token's input) or the
// slot's own (down: x (k, K), row j), by the stride xs (K / 4 vec4, or 0).
// An id >= E gives a row of NaN.
//
// The work split and the decoding are matvec_q4's (matvec_q4.wgsl and
// lib/matvec_quant.wgsl, which this follows line for line; only the row base
// and x's offset differ): a thread computes 4 rows (vec4 accumulators), a
// workgroup WG / TPR teams of TPR lanes, lane i reading chunks i, i + TPR, ...
// (one vec4<u32>, 32 codes, always inside one group since 32 | G) of its 4
// rows; TPR > 1 sums the lanes in workgroup memory behind one barrier. The
// workgroups cover the N rows of one slot in x (and y, by grid()); z is the slot.
// Codes are decoded without shifts (matvec_q4.wgsl says how and why).
//
// p: rows = N (per expert), kw = K / 8, chunks = K / 32, tail = kw % 4,
//    gpr = ceil(K / G), experts = E, xs = vec4 of x per slot (K / 4 or 0), nan
// codes:  (E * N * K / 8) u32 as vec4<u32> (binding rounded up to 16 bytes)
// scales: (E * N, gpr) u32, pack2x16float(d, m)
// x: (K) shared, or (k, K) one per slot, as vec4<T> (K is a multiple of 8)
// ids: (k) u32, the experts of the slots (moe_router's row)
// y: (k, N)
// Needs: common.wgsl

struct Params { rows: u32, kw: u32, chunks: u32, tail: u32, gpr: u32, experts: u32, xs: u32, nan: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<T>;

override WG: u32 = 64;   // threads per workgroup
override TPR: u32 = 8;   // lanes per team of 4 rows, a divisor of WG
override G: u32 = 32;    // quant group along K: 32, 64 or 128
override ROWS: u32 = 4u * (WG / TPR); // rows per workgroup
const WORD_CODES = 8u;
var<workgroup> partial: array<vec4<f32>, WG>;
var<private> x0: u32; // first vec4 of this slot's x

// 2^(-4j) for the codes j = 0..3 and 4..7 of a word.
const LO = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
const HI = vec4<f32>(1.52587890625e-05, 9.5367431640625e-07, 5.9604644775390625e-08, 3.725290298461914e-09);

// Word i of the codes.
fn word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// For word wi of 4 rows (w, one per component):
//   .s = sum_j q_j x[8 wi + j] - 8 x[8 wi + 7] per row,  .sx = (sum_j x[8 wi + j], 8 x[8 wi + 7]).
struct WordDot { s: vec4<f32>, sx: vec2<f32> }

fn dot_word(w: vec4<u32>, wi: u32) -> WordDot {
  let xl = vec4<f32>(x[x0 + 2u * wi]);
  let xh = vec4<f32>(x[x0 + 2u * wi + 1u]);
  let lo = xl * LO;
  let hi = xh * HI;
  let v = bitcast<vec4<i32>>(w);
  var s = vec4<f32>(v & vec4<i32>(0xF)) * lo.x;
  s += vec4<f32>(v & vec4<i32>(0xF0)) * lo.y;
  s += vec4<f32>(v & vec4<i32>(0xF00)) * lo.z;
  s += vec4<f32>(v & vec4<i32>(0xF000)) * lo.w;
  s += vec4<f32>(v & vec4<i32>(0xF0000)) * hi.x;
  s += vec4<f32>(v & vec4<i32>(0xF00000)) * hi.y;
  s += vec4<f32>(v & vec4<i32>(0xF000000)) * hi.z;
  s += vec4<f32>((v ^ vec4<i32>(i32(-2147483648))) & vec4<i32>(i32(-268435456))) * hi.w; // (q7 - 8) * 2^28
  return WordDot(s, vec2<f32>(dot(xl + xh, vec4<f32>(1.0)), 8.0 * xh.w));
}

// d * (s + 8 x7 terms) + m * sum x for 4 rows, whose scales are at i.
fn scaled(i: vec4<u32>, s: vec4<f32>, sx: vec2<f32>) -> vec4<f32> {
  let a = unpack2x16float(scales[i.x]);
  let b = unpack2x16float(scales[i.y]);
  let c = unpack2x16float(scales[i.z]);
  let e = unpack2x16float(scales[i.w]);
  return vec4<f32>(a.x, b.x, c.x, e.x) * (s + sx.y) + vec4<f32>(a.y, b.y, c.y, e.y) * sx.x;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = wid.z;
  let expert = ids[slot];
  let routed = expert < p.experts;
  x0 = slot * p.xs;
  let lane = lid % TPR;
  let first = group_index(wid, nwg) * ROWS; // first row (of N) of this workgroup
  let n0 = first + 4u * (lid / TPR);        // first of this team's 4 rows
  var acc = vec4<f32>(0.0);
  if (routed && n0 < p.rows) {
    // rows of the stack: expert e's row n is e * N + n
    let n = vec4<u32>(expert * p.rows) + min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u));
    let base = n * p.kw;   // first code word of each row
    let sbase = n * p.gpr; // first scale of each row
    if (p.tail == 0u) {
      let b = base / 4u;
      for (var c = lane; c < p.chunks; c += TPR) {
        let q0 = codes[b.x + c];
        let q1 = codes[b.y + c];
        let q2 = codes[b.z + c];
        let q3 = codes[b.w + c];
        let d0 = dot_word(vec4<u32>(q0.x, q1.x, q2.x, q3.x), 4u * c);
        let d1 = dot_word(vec4<u32>(q0.y, q1.y, q2.y, q3.y), 4u * c + 1u);
        let d2 = dot_word(vec4<u32>(q0.z, q1.z, q2.z, q3.z), 4u * c + 2u);
        let d3 = dot_word(vec4<u32>(q0.w, q1.w, q2.w, q3.w), 4u * c + 3u);
        acc += scaled(sbase + 4u * WORD_CODES * c / G, d0.s + d1.s + d2.s + d3.s, d0.sx + d1.sx + d2.sx + d3.sx);
      }
    } else {
      for (var c = lane; c < p.chunks; c += TPR) {
        var s = vec4<f32>(0.0);
        var sx = vec2<f32>(0.0);
        for (var i = 0u; i < 4u; i++) {
          let wi = 4u * c + i;
          let d = dot_word(vec4<u32>(word(base.x + wi), word(base.y + wi), word(base.z + wi), word(base.w + wi)), wi);
          s += d.s;
          sx += d.sx;
        }
        acc += scaled(sbase + 4u * WORD_CODES * c / G, s, sx);
      }
    }
    for (var t = lane; t < p.tail; t += TPR) {
      let wi = 4u * p.chunks + t;
      let d = dot_word(vec4<u32>(word(base.x + wi), word(base.y + wi), word(base.z + wi), word(base.w + wi)), wi);
      acc += scaled(sbase + WORD_CODES * wi / G, d.s, d.sx);
    }
  }
  let out0 = slot * p.rows; // this slot's row of y
  if (TPR == 1u) {
    for (var r = 0u; r < 4u; r++) {
      if (n0 + r < p.rows) { y[out0 + n0 + r] = select(T(p.nan), T(acc[r]), routed); }
    }
    return;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var r = lid; r < ROWS && first + r < p.rows; r += WG) {
    let t = r / 4u;
    var sum = 0.0;
    for (var i = 0u; i < TPR; i++) {
      sum += partial[t * TPR + i][r % 4u];
    }
    y[out0 + first + r] = select(T(p.nan), T(sum), routed);
  }
}
