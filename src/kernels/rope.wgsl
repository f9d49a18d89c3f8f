// rope: rotary position embedding of x, in place. For each token t, head h and
// pair i < R/2 (R = rotDim <= Dh), with (c, s) = cos_sin[t, i]:
//     x[a] <- x[a] * c - x[b] * s,   x[b] <- x[b] * c + x[a] * s
// where the pair (a, b) is
//     (i, i + R/2)   "neox" / rotate_half: Hugging Face Llama, GPT-NeoX
//     (2i, 2i + 1)   INTERLEAVED: GPT-J, Meta's original Llama
// Dims >= R are left as they are (partial rotary).
// x: (T, H, Dh) row-major, read and written; cos_sin: (T, R/2) vec2<f32>
// (cos, sin), built on the CPU (rope.ts says why). One invocation per pair.
// Needs: common.wgsl

struct Params { tokens: u32, heads: u32, dim: u32, half: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<T>;
@group(0) @binding(2) var<storage, read> cos_sin: array<vec2<f32>>;

override WG: u32 = 256;
override INTERLEAVED: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = group_index(wid, nwg) * WG + lid; // pair index over (T, H, R/2)
  if (n >= p.tokens * p.heads * p.half) { return; }
  let i = n % p.half;
  let th = n / p.half; // t * H + h
  let t = th / p.heads;
  var a = th * p.dim + i;
  var b = a + p.half;
  if (INTERLEAVED) {
    a = th * p.dim + 2u * i;
    b = a + 1u;
  }
  let cs = cos_sin[t * p.half + i];
  let xa = f32(x[a]);
  let xb = f32(x[b]);
  x[a] = T(xa * cs.x - xb * cs.y);
  x[b] = T(xb * cs.x + xa * cs.y);
}
