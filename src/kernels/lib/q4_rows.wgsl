// q4_rows.wgsl: 4 rows of a 4-bit weight against the rows of 8 tokens, in
// registers, without workgroup memory or barriers: the prefill path of
// matmul_q4_rows and moe_matmul_q4_rows on adapters where a barrier is dear
// (SwiftShader turns every invocation of a workgroup with a barrier into a
// coroutine).
//
// matvec_q4's decoding (codes taken in place, x scaled by 2^(-4j), the sign
// trick for code 7; see matvec_q4.wgsl), with each word's 8 masked codes
// converted once and used for the 8 tokens. Per step (a chunk of 4 words, 32
// codes of a row inside one group since 32 | G; or one word of the tail when
// K % 32 != 0) the scales are applied once per token:
//   acc += d * (s + 8 x7 terms) + m * sum x.
// The tokens are written out one by one, each in its own variables, not as
// an array indexed in a loop: SwiftShader does not unroll loops, so such an
// array stays in memory (the whole kernel was 1.2x slower that way).
//
// The kernel declares: codes (array<vec4<u32>>, the packed codes, binding
// rounded up to 16 bytes), scales (array<u32>, pack2x16float(d, m)),
// x (array<vec4<T>>), the override G (the quant group), and calls
// q4_rows(base, sbase, chunks, tail, xa, xb).

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

// Adds word wi (codes c) times one token's x (its row of x starts at vec4 xr)
// to that token's sums: s (4 rows) and sx = (sum x, 8 x7).
fn q4_add_token(s: ptr<function, vec4<f32>>, sx: ptr<function, vec2<f32>>, c: Q4Codes, xr: u32, wi: u32) {
  let xl = vec4<f32>(x[xr + 2u * wi]);
  let xh = vec4<f32>(x[xr + 2u * wi + 1u]);
  let lo = xl * Q4_LO;
  let hi = xh * Q4_HI;
  *s += c.c0 * lo.x + c.c1 * lo.y + c.c2 * lo.z + c.c3 * lo.w + c.c4 * hi.x + c.c5 * hi.y + c.c6 * hi.z + c.c7 * hi.w;
  *sx += vec2<f32>(dot(xl + xh, vec4<f32>(1.0)), 8.0 * xh.w);
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

// y for 8 tokens (a0 .. a7), 4 rows each (a component per row).
struct Q4Rows8 { a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32> }

// The 4 rows whose code words start at base (kw words each, chunks = kw / 4,
// tail = kw % 4) and scales at sbase, against the 8 rows of x that start at
// vec4 xa (tokens 0 .. 3) and xb (4 .. 7).
fn q4_rows(base: vec4<u32>, sbase: vec4<u32>, chunks: u32, tail: u32, xa: vec4<u32>, xb: vec4<u32>) -> Q4Rows8 {
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  for (var step = 0u; step < chunks + tail; step++) {
    var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0); var s5 = vec4<f32>(0.0); var s6 = vec4<f32>(0.0); var s7 = vec4<f32>(0.0);
    var x0 = vec2<f32>(0.0); var x1 = vec2<f32>(0.0); var x2 = vec2<f32>(0.0); var x3 = vec2<f32>(0.0);
    var x4 = vec2<f32>(0.0); var x5 = vec2<f32>(0.0); var x6 = vec2<f32>(0.0); var x7 = vec2<f32>(0.0);
    let chunk = step < chunks;
    let first = select(4u * chunks + step - chunks, 4u * step, chunk); // first word of the step
    let words = select(1u, 4u, chunk);
    // Rows start on a 16-byte boundary when K is a multiple of a chunk (a
    // uniform branch): a chunk is then one vec4 per row; otherwise gather words.
    var q = array<vec4<u32>, 4>();
    if (chunk && tail == 0u) {
      let b = base / 4u;
      let r0 = codes[b.x + step];
      let r1 = codes[b.y + step];
      let r2 = codes[b.z + step];
      let r3 = codes[b.w + step];
      q = array<vec4<u32>, 4>(vec4<u32>(r0.x, r1.x, r2.x, r3.x), vec4<u32>(r0.y, r1.y, r2.y, r3.y), vec4<u32>(r0.z, r1.z, r2.z, r3.z), vec4<u32>(r0.w, r1.w, r2.w, r3.w));
    } else {
      for (var i = 0u; i < words; i++) {
        let wi = first + i;
        q[i] = vec4<u32>(q4_word(base.x + wi), q4_word(base.y + wi), q4_word(base.z + wi), q4_word(base.w + wi));
      }
    }
    for (var i = 0u; i < words; i++) {
      let wi = first + i;
      let c = q4_codes(q[i]);
      q4_add_token(&s0, &x0, c, xa.x, wi);
      q4_add_token(&s1, &x1, c, xa.y, wi);
      q4_add_token(&s2, &x2, c, xa.z, wi);
      q4_add_token(&s3, &x3, c, xa.w, wi);
      q4_add_token(&s4, &x4, c, xb.x, wi);
      q4_add_token(&s5, &x5, c, xb.y, wi);
      q4_add_token(&s6, &x6, c, xb.z, wi);
      q4_add_token(&s7, &x7, c, xb.w, wi);
    }
    let f = q4_scales(sbase + 8u * first / G);
    a0 += f.d * (s0 + x0.y) + f.m * x0.x;
    a1 += f.d * (s1 + x1.y) + f.m * x1.x;
    a2 += f.d * (s2 + x2.y) + f.m * x2.x;
    a3 += f.d * (s3 + x3.y) + f.m * x3.x;
    a4 += f.d * (s4 + x4.y) + f.m * x4.x;
    a5 += f.d * (s5 + x5.y) + f.m * x5.x;
    a6 += f.d * (s6 + x6.y) + f.m * x6.x;
    a7 += f.d * (s7 + x7.y) + f.m * x7.x;
  }
  return Q4Rows8(a0, a1, a2, a3, a4, a5, a6, a7);
}
