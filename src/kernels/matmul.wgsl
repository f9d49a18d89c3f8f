// matmul: y[t, n] = sum_k x[t, k] * W[n, k], W f32 (N, K) (out, in): a linear
// layer with dense weights (the small ones: classifier heads, projections
// kept unquantized). A workgroup computes a 64 × 64 tile of y (64 tokens ×
// 64 output rows) as 16 × 16 threads with 4 × 4 outputs each; for each step
// of 32 along K the x and W tiles are staged k-major in workgroup memory,
// loaded with consecutive threads on consecutive k (coalesced rows). Any K:
// elements beyond T, N or K are staged as 0 and never written.
//
// p: tokens = T, N rows, K, ldy = row stride of y
// x: (T, K)
// w: (N, K) f32
// y: (T, ldy): columns 0 .. N of each row, ldy >= N (a slice of wider logits)
// Needs: matmul_tile.wgsl

struct Params { tokens: u32, N: u32, K: u32, ldy: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<T>;

const TM = 64u;  // tokens per tile
const TN = 64u;  // rows of W per tile
const BK = 32u;  // k per step
// 16 × 16 threads, 4 × 4 outputs each: the register tile has a fixed size
// (private arrays need constant sizes), so these are constants, not overrides.

var<workgroup> xs: array<vec4<f32>, BK * TM / 4u>; // xs[k][t / 4], 4 tokens per vec4
var<workgroup> ws: array<vec4<f32>, BK * TN / 4u>; // ws[k][n / 4], 4 rows per vec4

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = wid.x * TN; // first row of W in the tile
  let t0 = wid.y * TM; // first token in the tile
  var acc: array<vec4<f32>, 4>; // acc[i][j]: token t0 + 4 ty + i, row n0 + 4 tx + j

  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage 64 × 32 of x and of W, 8 values each per thread; e % 32 is k.
    for (var e = li; e < TM * BK; e += 256u) {
      let r = e / BK;
      let kk = e % BK;
      let k = k0 + kk;
      var xv = 0.0;
      if (t0 + r < p.tokens && k < p.K) { xv = f32(x[(t0 + r) * p.K + k]); }
      xs[kk * (TM / 4u) + r / 4u][r % 4u] = xv;
      var wv = 0.0;
      if (n0 + r < p.N && k < p.K) { wv = w[(n0 + r) * p.K + k]; }
      ws[kk * (TN / 4u) + r / 4u][r % 4u] = wv;
    }
    workgroupBarrier();
    tile_accumulate(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  tile_store(acc, t0, n0, lid.x, lid.y);
}
