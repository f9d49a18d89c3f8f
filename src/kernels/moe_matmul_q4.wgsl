// moe_matmul_q4: the prefill path of the experts, grouped: for each
// (token, slot) entry i = t * k + j routed to expert e,
//   y[i, n] = sum_c W_e[n, c] * x[row(i), c],   row(i) = t (gather = 1: the
//   token's input, x (T, K); gate and up) or i (gather = 0: the entry's own
//   row, x (T * k, K); down),
// W the E experts stacked as one q4 matrix (E * N, K) (runtime/q4.ts). The
// entries come grouped by expert in moe_group's plan: a workgroup takes one
// tile of TM = 32 consecutive positions of one expert's segment (the plan's
// tile list) and TN = 64 output rows, so each expert's weights run over its
// own gathered rows only and are dequantized once per tile. Tiles past the
// ones in use (the grid is sized for the worst case) return at once.
// The tile is matmul_q4's register tile (lib/matmul_tile.wgsl) at 32 × 64:
// 16 × 8 threads with 4 entries × 4 rows each; per step of 32 along K the
// gathered x rows and the dequantized W rows (w = m + q * d) are staged
// k-major in workgroup memory, as 0 past the segment, N or K. Results go back
// to the entries' own rows of y, in (token, slot) order, for moe_combine.
//
// p: tokens = T * k (rows of y, for tile_store's bounds), N rows per expert,
//    kw = K / 8, gpr = ceil(K / G), ldy = N, k slots per token, gather,
//    experts = E, perm / offsets / tiles: the plan's sections (moe_group.wgsl)
// x: (T, K) or (T * k, K) as vec4<T> (K is a multiple of 8)
// codes:  (E * N, kw) u32; scales: (E * N, gpr) u32, pack2x16float(d, m)
// plan: u32 (moe_group.wgsl); y: (T * k, N)
// Needs: matmul_tile.wgsl

struct Params { tokens: u32, N: u32, kw: u32, gpr: u32, ldy: u32, k: u32, gather: u32, experts: u32, perm: u32, offsets: u32, tiles: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> plan: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<T>;

override G: u32 = 32; // quant group along K: 32, 64 or 128

const TM = 32u;  // entries per tile (moe_group.ts MOE_TILE)
const TN = 64u;  // rows of W per tile
const BK = 32u;  // k per step: 4 code words of a row
const NONE = 0xffffffffu;

var<workgroup> xs: array<vec4<f32>, BK * TM / 4u>; // xs[k][r / 4], 4 entries per vec4
var<workgroup> ws: array<vec4<f32>, BK * TN / 4u>; // ws[k][n / 4], 4 rows per vec4

// Stages W_e[n0 + n, k0 + kk .. + 8] (row w0 + n0 + n of the stack): one code
// word into ws, k-major; 0 past N or K.
fn stage_w(w0: u32, n0: u32, n: u32, k0: u32, kk: u32) {
  let wi = (k0 + kk) / 8u;
  var word = 0u;
  var dm = vec2<f32>(0.0);
  if (n0 + n < p.N && wi < p.kw) {
    let row = w0 + n0 + n;
    word = codes[row * p.kw + wi];
    dm = unpack2x16float(scales[row * p.gpr + wi * 8u / G]);
  }
  for (var j = 0u; j < 8u; j++) {
    ws[(kk + j) * (TN / 4u) + n / 4u][n % 4u] = fma(f32((word >> (4u * j)) & 15u), dm.x, dm.y);
  }
}

// The row of x that position q of the plan gathers (its token, or its
// entry), or NONE at or past the tile's end.
fn source_row(q: u32, end: u32) -> u32 {
  if (q >= end) { return NONE; }
  let entry = plan[p.perm + q];
  return select(entry, entry / p.k, p.gather != 0u);
}

// x[row, 4 k4 .. 4 k4 + 4], or 0 for no row or past K.
fn load_x(row: u32, k4: u32, kx: u32) -> vec4<f32> {
  if (row == NONE || k4 >= kx) { return vec4<f32>(0.0); }
  return vec4<f32>(x[row * kx + k4]);
}

// Entry r of the tile, k kk .. kk + 4, into xs (k-major).
fn stage_x(r: u32, kk: u32, v: vec4<f32>) {
  xs[kk * (TM / 4u) + r / 4u][r % 4u] = v.x;
  xs[(kk + 1u) * (TM / 4u) + r / 4u][r % 4u] = v.y;
  xs[(kk + 2u) * (TM / 4u) + r / 4u][r % 4u] = v.z;
  xs[(kk + 3u) * (TM / 4u) + r / 4u][r % 4u] = v.w;
}

@compute @workgroup_size(16, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let tile = wid.y;
  let expert = plan[p.tiles + 2u * tile];
  if (expert >= p.experts) { return; } // a tile past the ones in use: the whole workgroup
  let start = plan[p.tiles + 2u * tile + 1u];             // first position of the tile
  let end = min(start + TM, plan[p.offsets + expert + 1u]); // end of the tile within the segment
  let n0 = wid.x * TN;
  let w0 = expert * p.N; // the expert's first row in the stack
  let kx = p.kw * 2u;    // vec4 per row of x

  // The x rows this thread stages: entries li / 8 and li / 8 + 16 of the tile
  // (NONE past the segment), 4 values at k4 = k0 / 4 + li % 8 of each.
  let src0 = source_row(start + li / 8u, end);
  let src1 = source_row(start + li / 8u + 16u, end);
  let r0 = li / 8u;
  let kk = (li % 8u) * 4u;

  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k0 = 0u; k0 < p.kw * 8u; k0 += BK) {
    // Stage x: 32 entries × 8 vec4, two per thread.
    let k4 = k0 / 4u + li % 8u;
    stage_x(r0, kk, load_x(src0, k4, kx));
    stage_x(r0 + 16u, kk, load_x(src1, k4, kx));
    // Stage W: 64 rows × 32 values, two code words per thread.
    stage_w(w0, n0, li / 4u, k0, (li % 4u) * 8u);
    stage_w(w0, n0, li / 4u + 32u, k0, (li % 4u) * 8u);
    workgroupBarrier();
    tile_accumulate(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  // Each entry's row of y is its own (token, slot) row.
  for (var i = 0u; i < 4u; i++) {
    let q = start + lid.y * 4u + i;
    if (q < end) {
      let row = plan[p.perm + q];
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + lid.x * 4u + j;
        if (n < p.N) { y[row * p.ldy + n] = T(acc[i][j]); }
      }
    }
  }
}
