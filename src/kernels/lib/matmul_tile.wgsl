// matmul_tile.wgsl: the register tile of the 64 × 64 matmuls (matmul,
// matmul_q4, matmul_q8): 16 × 16 threads with 4 tokens × 4 rows each. The
// kernel defines the k-major staged tiles xs and ws, TM, TN, BK, and p
// (tokens, N, ldy) and y.

// acc[i][j] += x[t0 + 4 ty + i, k] * W[n0 + 4 tx + j, k] over the BK staged k.
fn tile_accumulate(acc: ptr<function, array<vec4<f32>, 4>>, tx: u32, ty: u32) {
  for (var k = 0u; k < BK; k++) {
    let a = xs[k * (TM / 4u) + ty];
    let b = ws[k * (TN / 4u) + tx];
    (*acc)[0] = fma(vec4<f32>(a.x), b, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a.y), b, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a.z), b, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a.w), b, (*acc)[3]);
  }
}

// y[t, n] = acc for the tile's outputs that exist (t < tokens, n < N).
fn tile_store(acc: array<vec4<f32>, 4>, t0: u32, n0: u32, tx: u32, ty: u32) {
  for (var i = 0u; i < 4u; i++) {
    let t = t0 + ty * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx * 4u + j;
      if (t < p.tokens && n < p.N) { y[t * p.ldy + n] = T(acc[i][j]); }
    }
  }
}
