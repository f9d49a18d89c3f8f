// matmul_q4_rows: y[t, n] = sum_k x[t, k] * W[n, k], W in 4-bit q4
// (runtime/q4.ts), for several tokens without workgroup memory or barriers:
// the prefill path on adapters where a barrier is dear (SwiftShader turns
// every invocation of a workgroup with a barrier into a coroutine).
//
// A thread computes 4 rows of W for 8 tokens, all in registers: matvec_q4's
// decoding (codes taken in place, x scaled by 2^(-4j), the sign trick for
// code 7; see matvec_q4.wgsl), with each word's 8 masked codes converted once
// and used for the 8 tokens. The tokens are written out one by one, each in
// its own variables, not as an array indexed in a loop: SwiftShader does not
// unroll loops, and a private array indexed by a variable becomes a per-lane
// gather and scatter (about 3x slower here). Per group chunk (32 codes of a row, inside one
// group since 32 | G) the scales are applied once per token:
//   acc[t] += d * (s[t] + 8 x7 terms) + m * sum x.
// Rows past N repeat the last row and tokens past T the last token; neither
// is written.
//
// p: tokens = T, rows = N, kw = K / 8 code words per row, chunks = kw / 4,
//    tail = kw % 4, gpr = ceil(K / G) groups per row, ldy = row stride of y
// codes:  (N * K / 8) u32 as vec4<u32> (binding rounded up to 16 bytes)
// scales: (N, gpr) u32, pack2x16float(d, m)
// x: (T, K) as vec4<T> (K is a multiple of 8)
// y: (T, ldy): columns 0 .. N of each row, ldy >= N

struct Params { tokens: u32, rows: u32, kw: u32, chunks: u32, tail: u32, gpr: u32, ldy: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

override WG: u32 = 64; // threads per workgroup, each 4 rows
override G: u32 = 32;  // quant group along K: 32, 64 or 128
const WORD_CODES = 8u;

const LO = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
const HI = vec4<f32>(1.52587890625e-05, 9.5367431640625e-07, 5.9604644775390625e-08, 3.725290298461914e-09);

fn word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// One code word of 4 rows (a component per row), its 8 codes in place as floats.
struct Codes { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>, c4: vec4<f32>, c5: vec4<f32>, c6: vec4<f32>, c7: vec4<f32> }

fn codes_of(w: vec4<u32>) -> Codes {
  let v = bitcast<vec4<i32>>(w);
  return Codes(
    vec4<f32>(v & vec4<i32>(0xF)), vec4<f32>(v & vec4<i32>(0xF0)), vec4<f32>(v & vec4<i32>(0xF00)), vec4<f32>(v & vec4<i32>(0xF000)),
    vec4<f32>(v & vec4<i32>(0xF0000)), vec4<f32>(v & vec4<i32>(0xF00000)), vec4<f32>(v & vec4<i32>(0xF000000)),
    vec4<f32>((v ^ vec4<i32>(i32(-2147483648))) & vec4<i32>(i32(-268435456)))); // (q7 - 8) * 2^28
}

// Adds word wi (codes c) times one token's x (its row of x starts at vec4 xr)
// to that token's sums: s (4 rows) and sx = (sum x, 8 x7).
fn add_token(s: ptr<function, vec4<f32>>, sx: ptr<function, vec2<f32>>, c: Codes, xr: u32, wi: u32) {
  let xl = vec4<f32>(x[xr + 2u * wi]);
  let xh = vec4<f32>(x[xr + 2u * wi + 1u]);
  let lo = xl * LO;
  let hi = xh * HI;
  *s += c.c0 * lo.x + c.c1 * lo.y + c.c2 * lo.z + c.c3 * lo.w + c.c4 * hi.x + c.c5 * hi.y + c.c6 * hi.z + c.c7 * hi.w;
  *sx += vec2<f32>(dot(xl + xh, vec4<f32>(1.0)), 8.0 * xh.w);
}

// The scales of 4 rows at i: d and m, a component per row.
struct Scales { d: vec4<f32>, m: vec4<f32> }

fn scales_of(i: vec4<u32>) -> Scales {
  let a = unpack2x16float(scales[i.x]);
  let b = unpack2x16float(scales[i.y]);
  let c = unpack2x16float(scales[i.z]);
  let e = unpack2x16float(scales[i.w]);
  return Scales(vec4<f32>(a.x, b.x, c.x, e.x), vec4<f32>(a.y, b.y, c.y, e.y));
}

// y[t, n0 .. n0 + 3] = a, where the token and rows exist.
fn store(t: u32, n0: u32, a: vec4<f32>) {
  if (t >= p.tokens) { return; }
  for (var r = 0u; r < 4u; r++) {
    if (n0 + r < p.rows) { y[t * p.ldy + n0 + r] = T(a[r]); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = (wid.x * WG + lid) * 4u; // first of this thread's 4 rows
  let t0 = wid.y * 8u;              // first of its 8 tokens
  if (n0 >= p.rows) { return; }
  let n = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u));
  let base = n * p.kw;   // first code word of each row
  let sbase = n * p.gpr; // first scale of each row
  // The first vec4 of each token's row of x (tokens past T read the last).
  let kx = p.kw * 2u;
  let last = vec4<u32>(p.tokens - 1u);
  let xa = min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), last) * kx;
  let xb = min(vec4<u32>(t0) + vec4<u32>(4u, 5u, 6u, 7u), last) * kx;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);

  // Chunks of 4 words, then the 1 to 3 words of the tail (K not a multiple
  // of 32) one at a time; each step has one (d, m) per row.
  let steps = p.chunks + p.tail;
  for (var step = 0u; step < steps; step++) {
    var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0); var s5 = vec4<f32>(0.0); var s6 = vec4<f32>(0.0); var s7 = vec4<f32>(0.0);
    var x0 = vec2<f32>(0.0); var x1 = vec2<f32>(0.0); var x2 = vec2<f32>(0.0); var x3 = vec2<f32>(0.0);
    var x4 = vec2<f32>(0.0); var x5 = vec2<f32>(0.0); var x6 = vec2<f32>(0.0); var x7 = vec2<f32>(0.0);
    let chunk = step < p.chunks;
    let first = select(4u * p.chunks + step - p.chunks, 4u * step, chunk); // first word of the step
    let words = select(1u, 4u, chunk);
    // Rows start on a 16-byte boundary when K is a multiple of a chunk (a
    // uniform branch): a chunk is then one vec4 per row; otherwise gather words.
    var q = array<vec4<u32>, 4>();
    if (chunk && p.tail == 0u) {
      let b = base / 4u;
      let r0 = codes[b.x + step];
      let r1 = codes[b.y + step];
      let r2 = codes[b.z + step];
      let r3 = codes[b.w + step];
      q = array<vec4<u32>, 4>(vec4<u32>(r0.x, r1.x, r2.x, r3.x), vec4<u32>(r0.y, r1.y, r2.y, r3.y), vec4<u32>(r0.z, r1.z, r2.z, r3.z), vec4<u32>(r0.w, r1.w, r2.w, r3.w));
    } else {
      for (var i = 0u; i < words; i++) {
        let wi = first + i;
        q[i] = vec4<u32>(word(base.x + wi), word(base.y + wi), word(base.z + wi), word(base.w + wi));
      }
    }
    for (var i = 0u; i < words; i++) {
      let wi = first + i;
      let c = codes_of(q[i]);
      add_token(&s0, &x0, c, xa.x, wi);
      add_token(&s1, &x1, c, xa.y, wi);
      add_token(&s2, &x2, c, xa.z, wi);
      add_token(&s3, &x3, c, xa.w, wi);
      add_token(&s4, &x4, c, xb.x, wi);
      add_token(&s5, &x5, c, xb.y, wi);
      add_token(&s6, &x6, c, xb.z, wi);
      add_token(&s7, &x7, c, xb.w, wi);
    }
    // acc += d * (s + 8 x7 terms) + m * sum x, per token.
    let f = scales_of(sbase + WORD_CODES * first / G);
    a0 += f.d * (s0 + x0.y) + f.m * x0.x;
    a1 += f.d * (s1 + x1.y) + f.m * x1.x;
    a2 += f.d * (s2 + x2.y) + f.m * x2.x;
    a3 += f.d * (s3 + x3.y) + f.m * x3.x;
    a4 += f.d * (s4 + x4.y) + f.m * x4.x;
    a5 += f.d * (s5 + x5.y) + f.m * x5.x;
    a6 += f.d * (s6 + x6.y) + f.m * x6.x;
    a7 += f.d * (s7 + x7.y) + f.m * x7.x;
  }
  store(t0, n0, a0);
  store(t0 + 1u, n0, a1);
  store(t0 + 2u, n0, a2);
  store(t0 + 3u, n0, a3);
  store(t0 + 4u, n0, a4);
  store(t0 + 5u, n0, a5);
  store(t0 + 6u, n0, a6);
  store(t0 + 7u, n0, a7);
}
