// matmul_q4_rows: y[t, n] = sum_k x[t, k] * W[n, k], W in 4-bit q4
// (runtime/q4.ts), without workgroup memory or barriers: the prefill path on
// adapters where a barrier is dear. A thread computes 8 rows of W for 8
// tokens in registers (lib/q4_rows.wgsl). Rows past N repeat the last row and
// tokens past T the last token; neither is written.
//
// p: tokens = T, rows = N, kw = K / 8 code words per row, chunks = kw / 4,
//    tail = kw % 4, gpr = ceil(K / G) groups per row, ldy = row stride of y
// codes:  (N * K / 8) u32 as vec4<u32> (binding rounded up to 16 bytes)
// scales: (N, gpr) u32, pack2x16float(d, m)
// x: (T, K) as vec4<T> (K is a multiple of 8)
// y: (T, ldy): columns 0 .. N of each row, ldy >= N
// Needs: q4_rows.wgsl

struct Params { tokens: u32, rows: u32, kw: u32, chunks: u32, tail: u32, gpr: u32, ldy: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override WG: u32 = 16; // threads per workgroup, each 8 rows
override G: u32 = 32;  // quant group along K: 32, 64 or 128

// y[t, n0 .. n0 + 3] = a, where the token and rows exist.
fn store(t: u32, n0: u32, a: vec4<f32>) {
  if (t >= p.tokens) { return; }
  for (var r = 0u; r < 4u; r++) {
    if (n0 + r < p.rows) { y[t * p.ldy + n0 + r] = T(a[r]); }
  }
}

// Token t's 8 rows from n0.
fn store8(t: u32, n0: u32, a: Q4Out) {
  store(t, n0, a.r0);
  store(t, n0 + 4u, a.r1);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = (wid.x * WG + lid) * 8u; // first of this thread's 8 rows
  let t0 = wid.y * 8u;              // first of its 8 tokens
  if (n0 >= p.rows) { return; }
  let last = vec4<u32>(p.rows - 1u);
  let r0 = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), last);
  let r1 = min(vec4<u32>(n0) + vec4<u32>(4u, 5u, 6u, 7u), last);
  // The first vec4 of each token's row of x (tokens past T read the last).
  let kx = p.kw * 2u;
  let lastToken = vec4<u32>(p.tokens - 1u);
  let xa = min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), lastToken) * kx;
  let xb = min(vec4<u32>(t0) + vec4<u32>(4u, 5u, 6u, 7u), lastToken) * kx;
  let a = q4_rows(r0, r1, p.kw, p.gpr, p.chunks, p.tail, xa, xb);
  store8(t0, n0, a.t0);
  store8(t0 + 1u, n0, a.t1);
  store8(t0 + 2u, n0, a.t2);
  store8(t0 + 3u, n0, a.t3);
  store8(t0 + 4u, n0, a.t4);
  store8(t0 + 5u, n0, a.t5);
  store8(t0 + 6u, n0, a.t6);
  store8(t0 + 7u, n0, a.t7);
}
