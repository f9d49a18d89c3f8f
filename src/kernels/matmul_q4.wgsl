// matmul_q4: y[t, n] = sum_k x[t, k] * W[n, k], W in 4-bit q4 (runtime/q4.ts):
// the prefill path (many tokens). A workgroup computes a 64 × 64 tile of y
// (64 tokens × 64 output rows) as 16 × 16 threads with 4 × 4 outputs each.
// For each step of 32 along K it stages the x tile and the dequantized W
// tile (w = m + q * d, one code word of 8 values per thread) in workgroup
// memory, both k-major so a thread reads 4 tokens and 4 rows as two vec4.
// The dequantization is paid once per 64 tokens. Out-of-range tokens, rows
// and the k beyond K (K % 32 != 0) are staged as 0 and never written.
//
// p: tokens = T, N rows, kw = K / 8 code words per row, gpr = ceil(K / G) groups per row, ldy = row stride of y
// x: (T, K) as vec4<T> (K is a multiple of 8)
// codes:  (N, kw) u32, the packed codes
// scales: (N, gpr) u32, pack2x16float(d, m)
// y: (T, ldy): columns 0 .. N of each row, ldy >= N (a slice of wider logits)
// Needs: matmul_quant.wgsl (the entry point, shared with matmul_q8)

struct Params { tokens: u32, N: u32, kw: u32, gpr: u32, ldy: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override G: u32 = 32; // quant group along K: 32, 64 or 128

const TM = 64u;  // tokens per tile
const TN = 64u;  // rows of W per tile
const BK = 32u;  // k per step: 4 code words of a row
const WORD_CODES = 8u; // 4-bit codes per u32
// 16 × 16 threads, 4 × 4 outputs each: the register tile has a fixed size
// (private arrays need constant sizes), so these are constants, not overrides.

var<workgroup> xs: array<vec4<f32>, BK * TM / 4u>; // xs[k][t / 4], 4 tokens per vec4
var<workgroup> ws: array<vec4<f32>, BK * TN / 4u>; // ws[k][n / 4], 4 rows per vec4

// Stages W[n0 + n, k0 + kk .. + 8]: one code word (8 values) of row n0 + n
// into ws, k-major; 0 past N or K.
fn stage_w(n0: u32, n: u32, k0: u32, kk: u32) {
  let wi = (k0 + kk) / 8u;
  var word = 0u;
  var dm = vec2<f32>(0.0);
  if (n0 + n < p.N && wi < p.kw) {
    word = codes[(n0 + n) * p.kw + wi];
    dm = unpack2x16float(scales[(n0 + n) * p.gpr + wi * 8u / G]);
  }
  for (var j = 0u; j < 8u; j++) {
    ws[(kk + j) * (TN / 4u) + n / 4u][n % 4u] = fma(f32((word >> (4u * j)) & 15u), dm.x, dm.y);
  }
}
