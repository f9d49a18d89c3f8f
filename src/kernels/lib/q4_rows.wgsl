// q4_rows.wgsl: 8 rows of a 4-bit weight against the rows of 8 tokens, in
// registers, without workgroup memory or barriers: the prefill path of
// matmul_q4_rows and moe_matmul_q4_rows on adapters where a barrier is dear
// (SwiftShader turns every invocation of a workgroup with a barrier into a
// coroutine).
//
// matvec_q4's decoding (codes taken in place, x scaled by 2^(-4j), the sign
// trick for code 7; see matvec_q4.wgsl), with each word's 8 masked codes
// converted once and used for the 8 tokens, and each token's x read once for
// the 8 rows. Per step (a chunk of 4 words, 32 codes of a row inside one
// group since 32 | G; or one word of the tail when K % 32 != 0) the scales
// are applied once per token: acc += d * (s + 8 x7 terms) + m * sum x.
//
// Why this shape, on SwiftShader (bench/RESULTS.md): a load from storage at
// a computed index is a gather there, one scalar load per invocation and
// 32-bit value, and at 4 rows a thread the reads of x were half the kernel's
// time, so each x value read now serves 8 rows (4 rows, written out alike,
// was 1.3x slower). The tokens, rows and the 4 words of a chunk are written
// out, each in its own variables, not arrays indexed in loops: SwiftShader
// does not unroll loops, so such an array stays in memory.
//
// The kernel declares: codes (array<vec4<u32>>, the packed codes, binding
// rounded up to 16 bytes), scales (array<u32>, pack2x16float(d, m)),
// x (array<vec4<T>>), the override G (the quant group), and calls
// q4_rows(r0, r1, kw, gpr, chunks, tail, xa, xb).

const Q4_LO = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
const Q4_HI = vec4<f32>(1.52587890625e-05, 9.5367431640625e-07, 5.9604644775390625e-08, 3.725290298461914e-09);

fn q4_word(i: u32) -> u32 {
  return codes[i >> 2u][i & 3u];
}

// One code word of 4 rows (a component per row), its 8 codes in place as floats.
struct Q4Codes { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>, c4: vec4<f32>, c5: vec4<f32>, c6: vec4<f32>, c7: vec4<f32> }

fn q4_codes(w: vec4<u32>) -> Q4Codes {
  let v = bitcast<vec4<i32>>(w);
  return Q4Codes(
    vec4<f32>(v & vec4<i32>(0xF)), vec4<f32>(v & vec4<i32>(0xF0)), vec4<f32>(v & vec4<i32>(0xF00)), vec4<f32>(v & vec4<i32>(0xF000)),
    vec4<f32>(v & vec4<i32>(0xF0000)), vec4<f32>(v & vec4<i32>(0xF00000)), vec4<f32>(v & vec4<i32>(0xF000000)),
    vec4<f32>((v ^ vec4<i32>(i32(-2147483648))) & vec4<i32>(i32(-268435456)))); // (q7 - 8) * 2^28
}

// Codes c of 4 rows times 8 scaled x values (lo, hi), a component per row.
fn q4_dot(c: Q4Codes, lo: vec4<f32>, hi: vec4<f32>) -> vec4<f32> {
  return c.c0 * lo.x + c.c1 * lo.y + c.c2 * lo.z + c.c3 * lo.w + c.c4 * hi.x + c.c5 * hi.y + c.c6 * hi.z + c.c7 * hi.w;
}

// One token's sums over a step: rows 0-3 (s0) and 4-7 (s1), and (sum x, 8 x7).
struct Q4Sum { s0: vec4<f32>, s1: vec4<f32>, sx: vec2<f32> }

// s plus one code word of the 8 rows (c0, c1) times the token's 8 x values at vec4 xi.
fn q4_token(s: Q4Sum, c0: Q4Codes, c1: Q4Codes, xi: u32) -> Q4Sum {
  let xl = vec4<f32>(x[xi]);
  let xh = vec4<f32>(x[xi + 1u]);
  let lo = xl * Q4_LO;
  let hi = xh * Q4_HI;
  return Q4Sum(s.s0 + q4_dot(c0, lo, hi), s.s1 + q4_dot(c1, lo, hi), s.sx + vec2<f32>(dot(xl + xh, vec4<f32>(1.0)), 8.0 * xh.w));
}

struct Q4Sums { t0: Q4Sum, t1: Q4Sum, t2: Q4Sum, t3: Q4Sum, t4: Q4Sum, t5: Q4Sum, t6: Q4Sum, t7: Q4Sum }

// s plus word wi of the 8 rows (w0: rows 0-3, w1: rows 4-7) for the 8 tokens,
// whose rows of x start at vec4 xa (tokens 0 .. 3) and xb (4 .. 7).
fn q4_add_word(s: Q4Sums, w0: vec4<u32>, w1: vec4<u32>, xa: vec4<u32>, xb: vec4<u32>, wi: u32) -> Q4Sums {
  let c0 = q4_codes(w0);
  let c1 = q4_codes(w1);
  let o = 2u * wi;
  return Q4Sums(q4_token(s.t0, c0, c1, xa.x + o), q4_token(s.t1, c0, c1, xa.y + o), q4_token(s.t2, c0, c1, xa.z + o), q4_token(s.t3, c0, c1, xa.w + o),
                q4_token(s.t4, c0, c1, xb.x + o), q4_token(s.t5, c0, c1, xb.y + o), q4_token(s.t6, c0, c1, xb.z + o), q4_token(s.t7, c0, c1, xb.w + o));
}

// The scales of 4 rows at i: d and m, a component per row.
struct Q4Scales { d: vec4<f32>, m: vec4<f32> }

fn q4_scales(i: vec4<u32>) -> Q4Scales {
  let a = unpack2x16float(scales[i.x]);
  let b = unpack2x16float(scales[i.y]);
  let c = unpack2x16float(scales[i.z]);
  let e = unpack2x16float(scales[i.w]);
  return Q4Scales(vec4<f32>(a.x, b.x, c.x, e.x), vec4<f32>(a.y, b.y, c.y, e.y));
}

// y of one token: rows 0-3 (r0) and 4-7 (r1).
struct Q4Out { r0: vec4<f32>, r1: vec4<f32> }

// a plus a step's sums s, scaled by the step's scales (f0: rows 0-3, f1: 4-7).
fn q4_scaled(a: Q4Out, s: Q4Sum, f0: Q4Scales, f1: Q4Scales) -> Q4Out {
  return Q4Out(a.r0 + f0.d * (s.s0 + s.sx.y) + f0.m * s.sx.x, a.r1 + f1.d * (s.s1 + s.sx.y) + f1.m * s.sx.x);
}

// y for 8 tokens.
struct Q4Rows8 { t0: Q4Out, t1: Q4Out, t2: Q4Out, t3: Q4Out, t4: Q4Out, t5: Q4Out, t6: Q4Out, t7: Q4Out }

// Step sums s scaled by the step's scales (first: its first word) and added to a.
fn q4_step(a: Q4Rows8, s: Q4Sums, r0: vec4<u32>, r1: vec4<u32>, gpr: u32, first: u32) -> Q4Rows8 {
  let f0 = q4_scales(r0 * gpr + 8u * first / G);
  let f1 = q4_scales(r1 * gpr + 8u * first / G);
  return Q4Rows8(q4_scaled(a.t0, s.t0, f0, f1), q4_scaled(a.t1, s.t1, f0, f1), q4_scaled(a.t2, s.t2, f0, f1), q4_scaled(a.t3, s.t3, f0, f1),
                 q4_scaled(a.t4, s.t4, f0, f1), q4_scaled(a.t5, s.t5, f0, f1), q4_scaled(a.t6, s.t6, f0, f1), q4_scaled(a.t7, s.t7, f0, f1));
}

// The 8 rows r0 (0-3) and r1 (4-7) of the weight (kw words and gpr scales
// each; chunks = kw / 4, tail = kw % 4) against the 8 rows of x that start at
// vec4 xa (tokens 0 .. 3) and xb (4 .. 7).
fn q4_rows(r0: vec4<u32>, r1: vec4<u32>, kw: u32, gpr: u32, chunks: u32, tail: u32, xa: vec4<u32>, xb: vec4<u32>) -> Q4Rows8 {
  var a = Q4Rows8();
  if (tail == 0u) {
    // Rows start on a 16-byte boundary when K is a multiple of a chunk (a
    // uniform branch): a step is then one vec4 per row. Two loops, not one
    // with a branch inside: that cost 1.3x.
    let b0 = r0 * (kw / 4u);
    let b1 = r1 * (kw / 4u);
    for (var step = 0u; step < chunks; step++) {
      let q0 = codes[b0.x + step]; let q1 = codes[b0.y + step]; let q2 = codes[b0.z + step]; let q3 = codes[b0.w + step];
      let q4 = codes[b1.x + step]; let q5 = codes[b1.y + step]; let q6 = codes[b1.z + step]; let q7 = codes[b1.w + step];
      let first = 4u * step;
      var s = q4_add_word(Q4Sums(), vec4<u32>(q0.x, q1.x, q2.x, q3.x), vec4<u32>(q4.x, q5.x, q6.x, q7.x), xa, xb, first);
      s = q4_add_word(s, vec4<u32>(q0.y, q1.y, q2.y, q3.y), vec4<u32>(q4.y, q5.y, q6.y, q7.y), xa, xb, first + 1u);
      s = q4_add_word(s, vec4<u32>(q0.z, q1.z, q2.z, q3.z), vec4<u32>(q4.z, q5.z, q6.z, q7.z), xa, xb, first + 2u);
      s = q4_add_word(s, vec4<u32>(q0.w, q1.w, q2.w, q3.w), vec4<u32>(q4.w, q5.w, q6.w, q7.w), xa, xb, first + 3u);
      a = q4_step(a, s, r0, r1, gpr, first);
    }
  } else {
    // Otherwise gather each step's words: 4 of a chunk, then 1 of the tail.
    let base0 = r0 * kw;
    let base1 = r1 * kw;
    for (var step = 0u; step < chunks + tail; step++) {
      let chunk = step < chunks;
      let first = select(4u * chunks + step - chunks, 4u * step, chunk);
      var s = Q4Sums();
      for (var i = 0u; i < select(1u, 4u, chunk); i++) {
        let b0 = base0 + first + i;
        let b1 = base1 + first + i;
        s = q4_add_word(s, vec4<u32>(q4_word(b0.x), q4_word(b0.y), q4_word(b0.z), q4_word(b0.w)),
                           vec4<u32>(q4_word(b1.x), q4_word(b1.y), q4_word(b1.z), q4_word(b1.w)), xa, xb, first + i);
      }
      a = q4_step(a, s, r0, r1, gpr, first);
    }
  }
  return a;
}
