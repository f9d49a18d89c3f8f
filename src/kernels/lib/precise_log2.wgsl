// precise_log2.wgsl: log2 to about an ulp, for powers of a decay close to 1.
//
// Why: WGSL promises log2 only to an absolute 2^-21 on [0.5, 2] (3 ulp
// elsewhere). The retention kernels take gamma^t as exp2(t log2 gamma): at
// gamma = 1 - 2^-12, log2 gamma ~ -3.5e-4, and an error of 2^-21 in it is a
// relative 1.4e-3, which every power gamma^t then carries. On [0.5, 2] this
// sums ln x = 2 atanh(u) = 2 (u + u³/3 + u⁵/5 + ...), u = (x - 1) / (x + 1),
// |u| <= 1/3 (x - 1 is exact there): through u^17 the remainder is under
// 2^-30 of the sum. Outside [0.5, 2], WGSL's own log2 (3 ulp). For x > 0.
fn precise_log2(x: f32) -> f32 {
  if (x < 0.5 || x > 2.0) { return log2(x); }
  let u = (x - 1.0) / (x + 1.0);
  let u2 = u * u;
  var s = 1.0 / 17.0;
  for (var n = 15.0; n > 0.0; n -= 2.0) { s = s * u2 + 1.0 / n; }
  return 2.8853900817779268 * u * s;  // 2 log2(e) u s
}
