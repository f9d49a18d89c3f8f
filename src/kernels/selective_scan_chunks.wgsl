// selective_scan_chunks: pass 1 of the chunked selective scan (selective_scan.wgsl
// has the whole scheme). Per chunk c of `chunk` tokens and channel d, in parallel
// over both, the chunk's own contribution to the state, starting from h = 0:
//   S[c, d, n] = h after the chunk's tokens,  h = exp(dt A[d, n]) h + dt B[t, n] u[t, d]
//   Sdt[c, d]  = sum of dt over the chunk     (the chunk's decay is exp(A[d, n] * Sdt))
// The true state after the chunk is exp(A Sdt) * h_start + S, which pass 2 carries.
//
// u, delta: (T, Di) row-major; A: (Di, N) f32; B: (T, N);
// scratch: (1 + chunks, Di, N + 1) f32; this pass writes record (1 + c, d) = [S[c, d, 0..N), Sdt[c, d]].
// Grid: x = group of WG channels, y = chunk. The B rows of a chunk go through
// workgroup memory TB tokens at a time (every channel of the group reads them).
// Needs: activations.wgsl

struct Params { tokens: u32, Di: u32, chunk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> u: array<T>;
@group(0) @binding(2) var<storage, read> delta: array<T>;
@group(0) @binding(3) var<storage, read> A: array<f32>;
@group(0) @binding(4) var<storage, read> B: array<T>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

override WG: u32 = 64;
override NS: u32 = 16;  // N, the state size (<= NMAX)
override TB: u32 = 16;  // tokens per B tile

const NMAX = 64u;
const LOG2E = 1.4426950408889634;

var<workgroup> Bs: array<f32, TB * NS>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = wid.x * WG + lid;
  let live = d < p.Di;
  let dc = min(d, p.Di - 1u);  // a valid channel for the idle lanes' loads
  let t0 = wid.y * p.chunk;
  let t1 = min(t0 + p.chunk, p.tokens);
  var h: array<f32, NMAX>;
  var a: array<f32, NMAX>;
  for (var n = 0u; n < NS; n++) {
    h[n] = 0.0;
    a[n] = A[dc * NS + n] * LOG2E;
  }
  var sdt = 0.0;
  for (var tb = t0; tb < t1; tb += TB) {
    let nt = min(TB, t1 - tb);
    workgroupBarrier();  // the previous tile is consumed
    for (var i = lid; i < nt * NS; i += WG) { Bs[i] = f32(B[tb * NS + i]); }
    workgroupBarrier();
    if (live) {
      for (var k = 0u; k < nt; k++) {
        let j = (tb + k) * p.Di + d;
        let dt = softplus(f32(delta[j]));
        let bu = dt * f32(u[j]);
        sdt += dt;
        for (var n = 0u; n < NS; n++) {
          h[n] = exp2(dt * a[n]) * h[n] + bu * Bs[k * NS + n];
        }
      }
    }
  }
  if (!live) { return; }
  let r = ((1u + wid.y) * p.Di + d) * (NS + 1u);
  for (var n = 0u; n < NS; n++) { scratch[r + n] = h[n]; }
  scratch[r + NS] = sdt;
}
