// matvec_q4: y[n] = sum_k W[n, k] * x[k], W in 4-bit q4 (runtime/q4.ts): the
// decode path (one token). W[n, k] = m + q * d per group of G along K, so
//   y[n] = sum over chunks of 32 codes ( d * sum_k q[k] x[k]  +  m * sum_k x[k] )
// a chunk (one vec4<u32> of codes) always lies inside one group since 32 | G.
//
// A thread computes 4 rows at once (vec4 accumulators, component r = row
// n0 + r; rows past N repeat the last row and are not written), so each x
// value it loads serves 4 rows. A workgroup is WG / TPR teams of TPR lanes;
// lane i of a team reads chunks i, i + TPR, ... of its 4 rows, 16 bytes of
// each row at a time, so a team's loads per row are TPR * 16 consecutive
// bytes. With TPR > 1 the partial sums meet in workgroup memory behind one
// barrier; TPR = 1 has no barrier (the branch is settled when the pipeline
// is built): on SwiftShader a barrier makes every invocation a coroutine.
//
// Codes without shifts. Code j of a word (bits 4j .. 4j+3) is taken in place,
// f32(w & (15 << 4j)) = q_j * 2^(4j) (exact: at most 4 significant bits), and
// multiplied by x[8w + j] * 2^(-4j), prepared once per word for the 4 rows
// (exact scalings by powers of two). Code 7 holds the sign bit: flipping it
// first makes the signed i32 of (w ^ 2^31) & (15 << 28) equal (q_7 - 8) * 2^28,
// and the missing 8 * x[8w + 7] is added once per chunk beside d. That is one
// AND, one conversion and one multiply-add per code: SwiftShader scalarizes
// vector shifts (4 lanes one by one), and the shift-per-code form was ~2.5x
// slower there. The only difference from q * x is where |x| < 2^-98, whose
// scaled copy is subnormal and may flush to zero (a term below 2^-94 |d|).
//
// When K % 32 != 0 a row does not start on a 16-byte boundary: its chunks are
// then gathered word by word, and the last (K % 32) / 8 words (the tail) are
// spread over the lanes.
//
// p: rows = N, kw = K / 8, chunks = K / 32, tail = kw % 4, gpr = ceil(K / G) groups per row
// codes:  (N * K / 8) u32 as vec4<u32>, the packed codes (binding rounded up to 16 bytes)
// scales: (N, gpr) u32, pack2x16float(d, m)
// x: (K) as vec4<T> (K is a multiple of 8)
// y: (N)
// Needs: common.wgsl, matvec_quant.wgsl (the entry point, shared with matvec_q8)

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
const WORD_CODES = 8u;                // 4-bit codes per u32
var<workgroup> partial: array<vec4<f32>, WG>;

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
  let xl = vec4<f32>(x[2u * wi]);
  let xh = vec4<f32>(x[2u * wi + 1u]);
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
