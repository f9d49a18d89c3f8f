// matvec_quant.wgsl: the entry point of matvec_q4 and matvec_q8, which split
// the work the same way and differ only in how a code word is decoded (see
// matvec_q4.wgsl for the split: 4 rows per thread, teams of TPR lanes, one
// barrier only when TPR > 1). The kernel defines:
//   p (rows, kw, chunks, tail, gpr), codes (vec4<u32>), y, partial, WG, TPR, G, ROWS,
//   WORD_CODES: codes per u32 word (a chunk is one vec4<u32>: 4 words),
//   word(i), dot_word(w, wi) -> WordDot, scaled(scale index, s, sx).

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = lid % TPR;
  let first = group_index(wid, nwg) * ROWS; // first row of this workgroup
  let n0 = first + 4u * (lid / TPR);        // first of this team's 4 rows
  var acc = vec4<f32>(0.0);
  if (n0 < p.rows) {
    let n = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u));
    let base = n * p.kw;   // first code word of each row
    let sbase = n * p.gpr; // first scale of each row
    // Full chunks of 4 words, one (d, m) per row. Rows start on a 16-byte
    // boundary when K is a multiple of a chunk (a uniform branch); otherwise
    // gather words.
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
    // Tail (K not a multiple of a chunk): the last 1 to 3 words of the rows,
    // word 4 * chunks + t for lanes t, t + TPR, ... (with TPR < 3 a lane takes
    // more than one).
    for (var t = lane; t < p.tail; t += TPR) {
      let wi = 4u * p.chunks + t;
      let d = dot_word(vec4<u32>(word(base.x + wi), word(base.y + wi), word(base.z + wi), word(base.w + wi)), wi);
      acc += scaled(sbase + WORD_CODES * wi / G, d.s, d.sx);
    }
  }
  if (TPR == 1u) {
    for (var r = 0u; r < 4u; r++) {
      if (n0 + r < p.rows) { y[n0 + r] = T(acc[r]); }
    }
    return;
  }
  // partial[t * TPR + lane] holds team t's 4 rows: a team's partials are adjacent.
  partial[lid] = acc;
  workgroupBarrier();
  // ROWS = 4 WG / TPR exceeds WG when TPR < 4: a thread may sum several rows.
  for (var r = lid; r < ROWS && first + r < p.rows; r += WG) {
    let t = r / 4u;
    var sum = 0.0;
    for (var i = 0u; i < TPR; i++) {
      sum += partial[t * TPR + i][r % 4u];
    }
    y[first + r] = T(sum);
  }
}
