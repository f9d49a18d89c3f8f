// matmul_q8: y[t, n] = sum_k x[t, k] * W[n, k], W in 8-bit q8 (runtime/q8.ts):
// the prefill path (many tokens) and the all-positions LM head. The tiling is
// matmul_q4's: a workgroup computes a 64 × 64 tile of y (64 tokens × 64 output
// rows) as 16 × 16 threads with 4 × 4 outputs each. For each step of 32 along
// K it stages the x tile and the dequantized W tile (w = m + q * d) in
// workgroup memory, both k-major so a thread reads 4 tokens and 4 rows as two
// vec4. A step is 8 code words per row of 4 values each, so each thread
// stages two adjacent words: 8 values starting at a multiple of 8, inside one
// group (G is a multiple of 32), hence one scale read. The dequantization is
// paid once per 64 tokens. Out-of-range tokens, rows and the k beyond K
// (K % 32 != 0, even K % 8 == 4) are staged as 0 and never written.
//
// p: tokens = T, N rows, kw = K / 4 code words per row, gpr = ceil(K / G) groups per row, ldy = row stride of y
// x: (T, K) as vec4<T> (K is a multiple of 4)
// codes:  (N, kw) u32, the packed codes
// scales: (N, gpr) u32, pack2x16float(d, m)
// y: (T, ldy): columns 0 .. N of each row, ldy >= N (a slice of wider logits)
// Needs: nothing

struct Params { tokens: u32, N: u32, kw: u32, gpr: u32, ldy: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override G: u32 = 32; // quant group along K: 32, 64 or 128

const TM = 64u;  // tokens per tile
const TN = 64u;  // rows of W per tile
const BK = 32u;  // k per step: 8 code words of a row
// 16 × 16 threads, 4 × 4 outputs each: the register tile has a fixed size
// (private arrays need constant sizes), so these are constants, not overrides.

var<workgroup> xs: array<vec4<f32>, BK * TM / 4u>; // xs[k][t / 4], 4 tokens per vec4
var<workgroup> ws: array<vec4<f32>, BK * TN / 4u>; // ws[k][n / 4], 4 rows per vec4

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = wid.x * TN; // first row of W in the tile
  let t0 = wid.y * TM; // first token in the tile
  let kx = p.kw;       // vec4 per row of x: one per code word
  var acc: array<vec4<f32>, 4>; // acc[i][j]: token t0 + 4 ty + i, row n0 + 4 tx + j

  for (var k0 = 0u; k0 < p.kw * 4u; k0 += BK) {
    // Stage x: 64 tokens × 8 vec4, two per thread.
    for (var e = li; e < TM * BK / 4u; e += 256u) {
      let t = e / 8u;
      let k4 = k0 / 4u + e % 8u;
      var v = vec4<f32>(0.0);
      if (t0 + t < p.tokens && k4 < kx) { v = vec4<f32>(x[(t0 + t) * kx + k4]); }
      let kk = (e % 8u) * 4u;
      for (var c = 0u; c < 4u; c++) { xs[(kk + c) * (TM / 4u) + t / 4u][t % 4u] = v[c]; }
    }
    // Stage W: 64 rows × 8 code words, two adjacent words (8 values, one group) per thread.
    {
      let n = li / 4u;
      let wi = k0 / 4u + (li % 4u) * 2u; // even, so words wi and wi + 1 share a group
      var word = vec2<u32>(0u);
      var dm = vec2<f32>(0.0);
      if (n0 + n < p.N && wi < p.kw) {
        let row = (n0 + n) * p.kw;
        word.x = codes[row + wi];
        if (wi + 1u < p.kw) { word.y = codes[row + wi + 1u]; } // K % 8 == 4: the last word is alone
        dm = unpack2x16float(scales[(n0 + n) * p.gpr + wi * 4u / G]);
      }
      let kk = (li % 4u) * 8u;
      for (var h = 0u; h < 2u; h++) {
        for (var j = 0u; j < 4u; j++) {
          ws[(kk + 4u * h + j) * (TN / 4u) + n / 4u][n % 4u] = fma(f32((word[h] >> (8u * j)) & 255u), dm.x, dm.y);
        }
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = xs[k * (TM / 4u) + lid.y];
      let b = ws[k * (TN / 4u) + lid.x];
      acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
      acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
      acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
      acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let t = t0 + lid.y * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (t < p.tokens && n < p.N) { y[t * p.ldy + n] = T(acc[i][j]); }
    }
  }
}
