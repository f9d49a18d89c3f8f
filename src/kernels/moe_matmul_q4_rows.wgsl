// moe_matmul_q4_rows: what moe_matmul_q4 computes (the experts of T tokens,
// grouped by expert in moe_group's plan; see moe_matmul_q4.wgsl), without
// workgroup memory or barriers: the prefill path on adapters where a barrier
// is dear. A workgroup takes one tile of TM = 32 consecutive positions of one
// expert's segment and 64 output rows, as 4 × 8 threads: each computes 8
// rows of the expert's weights for 8 positions in registers
// (lib/q4_rows.wgsl). Positions past the tile's end read the tile's first
// row of x and are not written; tiles past the ones in use return at once.
//
// p: N rows per expert, kw = K / 8, chunks = kw / 4, tail = kw % 4,
//    gpr = ceil(K / G), ldy = N, k slots per token, gather, experts = E,
//    perm / offsets / tiles: the plan's sections (moe_group.wgsl)
// x: (T, K) or (T * k, K) as vec4<T> (K is a multiple of 8)
// codes:  (E * N * K / 8) u32 as vec4<u32> (binding rounded up to 16 bytes)
// scales: (E * N, gpr) u32, pack2x16float(d, m)
// plan: u32 (moe_group.wgsl); y: (T * k, N)
// Needs: q4_rows.wgsl

struct Params { N: u32, kw: u32, chunks: u32, tail: u32, gpr: u32, ldy: u32, k: u32, gather: u32, experts: u32, perm: u32, offsets: u32, tiles: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> plan: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<T>;

override G: u32 = 32; // quant group along K: 32, 64 or 128

const TM = 32u; // positions per tile (moe_group.ts MOE_TILE)
const TN = 64u; // rows per workgroup: 8 threads × 8

// The row of x that position q of the plan gathers: its token, or its entry.
fn source_row(q: u32) -> u32 {
  let entry = plan[p.perm + q];
  return select(entry, entry / p.k, p.gather != 0u);
}

// y[entry at position q, n0 .. n0 + 3] = a, for a position before end and the rows that exist.
fn store(q: u32, end: u32, n0: u32, a: vec4<f32>) {
  if (q >= end) { return; }
  let row = plan[p.perm + q];
  for (var r = 0u; r < 4u; r++) {
    if (n0 + r < p.N) { y[row * p.ldy + n0 + r] = T(a[r]); }
  }
}

// Position q's 8 rows from n0.
fn store8(q: u32, end: u32, n0: u32, a: Q4Out) {
  store(q, end, n0, a.r0);
  store(q, end, n0 + 4u, a.r1);
}

@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let tile = wid.y;
  let expert = plan[p.tiles + 2u * tile];
  if (expert >= p.experts) { return; } // a tile past the ones in use
  let start = plan[p.tiles + 2u * tile + 1u];             // first position of the tile
  let end = min(start + TM, plan[p.offsets + expert + 1u]); // end of the tile within the segment
  let n0 = wid.x * TN + (lid % 8u) * 8u; // first of this thread's 8 rows of the expert
  let q0 = start + (lid / 8u) * 8u;      // first of its 8 positions
  if (n0 >= p.N || q0 >= end) { return; }
  // its rows of the stack (rows past N repeat the expert's last)
  let last = vec4<u32>(p.N - 1u);
  let r0 = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), last) + vec4<u32>(expert * p.N);
  let r1 = min(vec4<u32>(n0) + vec4<u32>(4u, 5u, 6u, 7u), last) + vec4<u32>(expert * p.N);
  // The first vec4 of each position's row of x (positions past the end read the first).
  let kx = p.kw * 2u;
  var rows = array<u32, 8>();
  for (var i = 0u; i < 8u; i++) { rows[i] = source_row(select(start, q0 + i, q0 + i < end)) * kx; }
  let xa = vec4<u32>(rows[0], rows[1], rows[2], rows[3]);
  let xb = vec4<u32>(rows[4], rows[5], rows[6], rows[7]);
  let a = q4_rows(r0, r1, p.kw, p.gpr, p.chunks, p.tail, xa, xb);
  store8(q0, end, n0, a.t0);
  store8(q0 + 1u, end, n0, a.t1);
  store8(q0 + 2u, end, n0, a.t2);
  store8(q0 + 3u, end, n0, a.t3);
  store8(q0 + 4u, end, n0, a.t4);
  store8(q0 + 5u, end, n0, a.t5);
  store8(q0 + 6u, end, n0, a.t6);
  store8(q0 + 7u, end, n0, a.t7);
}
