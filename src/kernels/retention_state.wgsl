// retention_state: the state of RetNet retention after a span of tokens, in
// parallel (Sun et al. 2023, eq. 7's R_i without the chunk's outputs). Per head
// h with gamma = decay[h] and chunk c = tokens [cs, ce) (ce - cs = len):
//   dS_c = Σ_{cs <= m < ce} gamma^(ce-1-m) k_mᵀ v_m          (Dk × Dv, f32)
//   carry = 0: dst[c] = dS_c               (chunkwise pass (a): each chunk's own share)
//   carry = 1: dst[c] = gamma^len dst[c] + dS_c   (parallel form: one chunk of T tokens,
//                                                  dst = the state, updated in place)
// A matrix product Kᵀ diag(w) V over the chunk's tokens, w_m = exp2((ce-1-m) log2 gamma)
// computed from the exponent (never by repeated multiplication), accumulated in f32.
//
// k: (T, H, Dk); v: (T, H, Dv); both read as vec4 (Dk, Dv % 4 == 0); decay: (H) f32;
// dst: (chunks, H, Dk, Dv) f32 (the parallel form's state is its one chunk).
//
// One workgroup per (chunk, head, 32 rows i, 32 columns j of S); 64 threads as
// 8 × 8, each summing 4 rows × 4 columns; the chunk's tokens go through
// workgroup memory 32 at a time, k rows pre-multiplied by their weight.
// Needs: common.wgsl, precise_log2.wgsl

struct Params { tokens: u32, H: u32, Dk: u32, Dv: u32, chunk: u32, carry: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> decay: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<f32>>;

const B = 32u;   // tokens, rows and columns per tile
const B4 = 8u;   // B / 4
const WG = 64u;  // B4 × B4 threads

var<workgroup> Ks: array<vec4<f32>, B * B4>;  // Ks[m * B4 + i / 4] = w_m k[m, i0 + i .. + 3]
var<workgroup> Vs: array<vec4<f32>, B * B4>;  // Vs[m * B4 + j / 4] = v[m, j0 + j .. + 3]

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let DK4 = p.Dk / 4u;
  let DV4 = p.Dv / 4u;
  let nj = (DV4 + B4 - 1u) / B4;
  let ni = (DK4 + B4 - 1u) / B4;
  let g = group_index(wid, nwg);
  let jb = g % nj;
  let ib = (g / nj) % ni;
  let head = (g / (nj * ni)) % p.H;
  let c = g / (nj * ni * p.H);
  let cs = c * p.chunk;
  if (cs >= p.tokens) { return; }  // a spare workgroup of a grid split over x and y
  let ce = min(cs + p.chunk, p.tokens);
  let ti = tid / B4;  // rows 4 ti .. 4 ti + 3 of the block
  let tj = tid % B4;  // vec4 column tj of the block
  let lg = precise_log2(decay[head]);

  var acc: array<vec4<f32>, 4>;
  for (var m0 = cs; m0 < ce; m0 += B) {
    for (var x = tid; x < B * B4; x += WG) {
      let m = m0 + x / B4;
      let i4 = ib * B4 + x % B4;
      let j4 = jb * B4 + x % B4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (m < ce) {
        let row = m * p.H + head;
        if (i4 < DK4) { kv = vec4<f32>(k[row * DK4 + i4]) * exp2(f32(ce - 1u - m) * lg); }
        if (j4 < DV4) { vv = vec4<f32>(v[row * DV4 + j4]); }
      }
      Ks[x] = kv;
      Vs[x] = vv;
    }
    workgroupBarrier();
    for (var m = 0u; m < B; m++) {
      let kv = Ks[m * B4 + ti];
      let vv = Vs[m * B4 + tj];
      for (var r = 0u; r < 4u; r++) { acc[r] += kv[r] * vv; }
    }
    workgroupBarrier();
  }

  let j4 = jb * B4 + tj;
  if (j4 >= DV4) { return; }
  let keep = exp2(f32(ce - cs) * lg);  // gamma^len: what is left of the state before the chunk
  for (var r = 0u; r < 4u; r++) {
    let i = ib * B + 4u * ti + r;
    if (i >= p.Dk) { break; }
    let at = ((c * p.H + head) * p.Dk + i) * DV4 + j4;
    if (p.carry == 1u) { dst[at] = keep * dst[at] + acc[r]; } else { dst[at] = acc[r]; }
  }
}
