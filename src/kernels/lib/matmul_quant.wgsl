// matmul_quant.wgsl: the entry point of matmul_q4 and matmul_q8, which tile
// alike (see matmul_q4.wgsl) and differ only in how W is staged. The kernel
// defines p (tokens, N, kw, gpr, ldy), x, y, xs, ws, TM, TN, BK, WORD_CODES
// (codes per u32 word), and stage_w(n0, n, k0, kk): dequantize W[n0 + n,
// k0 + kk .. k0 + kk + 8] into ws, as 0 past N or K. Needs: matmul_tile.wgsl

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = wid.x * TN; // first row of W in the tile
  let t0 = wid.y * TM; // first token in the tile
  let kx = p.kw * WORD_CODES / 4u; // vec4 per row of x
  var acc: array<vec4<f32>, 4>; // acc[i][j]: token t0 + 4 ty + i, row n0 + 4 tx + j

  for (var k0 = 0u; k0 < p.kw * WORD_CODES; k0 += BK) {
    // Stage x: 64 tokens × 8 vec4, two per thread.
    for (var e = li; e < TM * BK / 4u; e += 256u) {
      let t = e / 8u;
      let k4 = k0 / 4u + e % 8u;
      var v = vec4<f32>(0.0);
      if (t0 + t < p.tokens && k4 < kx) { v = vec4<f32>(x[(t0 + t) * kx + k4]); }
      let kk = (e % 8u) * 4u;
      for (var c = 0u; c < 4u; c++) { xs[(kk + c) * (TM / 4u) + t / 4u][t % 4u] = v[c]; }
    }
    // Stage W: 64 rows × 32 values, 8 per thread (stage_w, the kernel's decoding).
    stage_w(n0, li / 4u, k0, (li % 4u) * 8u);
    workgroupBarrier();
    tile_accumulate(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  tile_store(acc, t0, n0, lid.x, lid.y);
}
