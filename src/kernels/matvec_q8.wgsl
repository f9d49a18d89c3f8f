// matvec_q8: y[n] = sum_k W[n, k] * x[k], W in 8-bit q8 (runtime/q8.ts): the
// decode path of the LM head (one token). W[n, k] = m + q * d per group of G
// along K, so
//   y[n] = sum over chunks of 16 codes ( d * sum_k q[k] x[k]  +  m * sum_k x[k] )
// a chunk (one vec4<u32> of codes) always lies inside one group since 16 | G.
//
// The work is split as in matvec_q4.wgsl: a thread computes 4 rows at once
// (vec4 accumulators, component r = row n0 + r; rows past N repeat the last
// row and are not written), so each x value it loads serves 4 rows. A
// workgroup is WG / TPR teams of TPR lanes; lane i of a team reads chunks
// i, i + TPR, ... of its 4 rows, 16 bytes of each row at a time. With TPR > 1
// the partial sums meet in workgroup memory behind one barrier; TPR = 1 has
// no barrier (settled when the pipeline is built): on SwiftShader a barrier
// makes every invocation a coroutine.
//
// Codes without shifts, as in q4 (SwiftShader scalarizes vector shifts). Code
// j of a word (bits 8j .. 8j+7) is taken in place, f32(w & (255 << 8j)) =
// q_j * 2^(8j) (exact: at most 8 significant bits), and multiplied by
// x[4w + j] * 2^(-8j), prepared once per word for the 4 rows (exact scalings
// by powers of two). Code 3 holds the sign bit: flipping it first makes the
// signed i32 of (w ^ 2^31) & (255 << 24) equal (q_3 - 128) * 2^24, and the
// missing 128 * x[4w + 3] is added once per chunk beside d. The only
// difference from q * x is where |x| < 2^-102, whose scaled copy is subnormal
// and may flush to zero (a term below 2^-94 |d|).
//
// When K % 16 != 0 a row does not start on a 16-byte boundary: its chunks are
// then gathered word by word, and the last (K % 16) / 4 words (the tail) are
// spread over the team's lanes (one lane reads all three when TPR = 1).
//
// p: rows = N, kw = K / 4, chunks = K / 16, tail = kw % 4, gpr = ceil(K / G) groups per row
// codes:  (N * K / 4) u32 as vec4<u32>, the packed codes (binding rounded up to 16 bytes)
// scales: (N, gpr) u32, pack2x16float(d, m)
// x: (K) as vec4<T> (K is a multiple of 4)
// y: (N)
// Needs: common.wgsl, matvec_quant.wgsl (the entry point, shared with matvec_q4)

struct Params { rows: u32, kw: u32, chunks: u32, tail: u32, gpr: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override WG: u32 = 64;   // threads per workgroup
override TPR: u32 = 8;   // lanes per team of 4 rows, a divisor of WG
override G: u32 = 32;    // quant group along K: 32, 64 or 128
override ROWS: u32 = 4u * (WG / TPR); // rows per workgroup
const WORD_CODES = 4u;                // 8-bit codes per u32
var<workgroup> partial: array<vec4<f32>, WG>;

// 2^(-8j) for the codes j = 0..3 of a word.
const SCALE = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08);

// Word i of the codes.
fn word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// For word wi of 4 rows (w, one per component):
//   .s = sum_j q_j x[4 wi + j] - 128 x[4 wi + 3] per row,  .sx = (sum_j x[4 wi + j], 128 x[4 wi + 3]).
struct WordDot { s: vec4<f32>, sx: vec2<f32> }

fn dot_word(w: vec4<u32>, wi: u32) -> WordDot {
  let xv = vec4<f32>(x[wi]);
  let xs = xv * SCALE;
  let v = bitcast<vec4<i32>>(w);
  var s = vec4<f32>(v & vec4<i32>(0xFF)) * xs.x;
  s += vec4<f32>(v & vec4<i32>(0xFF00)) * xs.y;
  s += vec4<f32>(v & vec4<i32>(0xFF0000)) * xs.z;
  s += vec4<f32>((v ^ vec4<i32>(i32(-2147483648))) & vec4<i32>(i32(-16777216))) * xs.w; // (q3 - 128) * 2^24
  return WordDot(s, vec2<f32>(dot(xv, vec4<f32>(1.0)), 128.0 * xv.w));
}

// d * (s + 128 x3 terms) + m * sum x for 4 rows, whose scales are at i.
fn scaled(i: vec4<u32>, s: vec4<f32>, sx: vec2<f32>) -> vec4<f32> {
  let a = unpack2x16float(scales[i.x]);
  let b = unpack2x16float(scales[i.y]);
  let c = unpack2x16float(scales[i.z]);
  let e = unpack2x16float(scales[i.w]);
  return vec4<f32>(a.x, b.x, c.x, e.x) * (s + sx.y) + vec4<f32>(a.y, b.y, c.y, e.y) * sx.x;
}
