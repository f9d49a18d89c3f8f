// selective_scan: the Mamba-1 selective scan over a prompt, parallel along the
// sequence (chunked), and pass 3 of that scheme: the outputs. Per channel d, state n:
//   dt = softplus(delta[t, d])                       (torch: threshold 20)
//   h[n] = exp(dt * A[d, n]) * h[n] + dt * B[t, n] * u[t, d]
//   y[t, d] = (sum_n C[t, n] * h[n] + D[d] * u[t, d]) * silu(z[t, d])
// (Gu & Dao 2023, Algorithm 2; HF MambaMixer.slow_forward.) The recurrence is a
// linear scan h_t = a_t h_{t-1} + b_t, so the tokens split into chunks of `chunk`:
//   pass 1 (selective_scan_chunks.wgsl), parallel over (chunk, d): each chunk's
//          end state from h = 0, and its sum of dt (its decay is exp(A * sum dt));
//   pass 2 (selective_scan_carry.wgsl), parallel over (d, n), serial over chunks
//          only: the true start state of every chunk, and the final state;
//   pass 3 (this file), parallel over (chunk, d): each chunk again from its true
//          start state, writing y.
// In passes 1 and 3 an invocation owns one channel and keeps its N states in
// registers, so y needs no reduction across invocations; the chunk's B and C
// rows, shared by every channel, go through workgroup memory TB tokens at a time.
//
// u, delta, z, y: (T, Di) row-major; B, C: (T, N);
// scratch: (1 + chunks, Di, N + 1) f32, read: record (0, d) = [A[d, 0..N), D[d]],
// record (1 + c, d) = [h at the start of chunk c (N values), sum dt] (pass 2).
// Grid: x = group of WG channels, y = chunk.
// Needs: activations.wgsl

struct Params { tokens: u32, Di: u32, chunk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> u: array<T>;
@group(0) @binding(2) var<storage, read> delta: array<T>;
@group(0) @binding(3) var<storage, read> B: array<T>;
@group(0) @binding(4) var<storage, read> C: array<T>;
@group(0) @binding(5) var<storage, read> z: array<T>;
@group(0) @binding(6) var<storage, read> scratch: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<T>;

override WG: u32 = 64;
override NS: u32 = 16;  // N, the state size (<= NMAX)
override TB: u32 = 16;  // tokens per B/C tile

const NMAX = 64u;
const LOG2E = 1.4426950408889634;

var<workgroup> Bs: array<f32, TB * NS>;
var<workgroup> Cs: array<f32, TB * NS>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let d = wid.x * WG + lid;
  let live = d < p.Di;
  let dc = min(d, p.Di - 1u);  // a valid channel for the idle lanes' loads
  let t0 = wid.y * p.chunk;
  let t1 = min(t0 + p.chunk, p.tokens);
  let rs = NS + 1u;
  let r0 = dc * rs;                              // [A, D] of the channel
  let r = ((1u + wid.y) * p.Di + dc) * rs;       // start state of this chunk
  var h: array<f32, NMAX>;
  var a: array<f32, NMAX>;
  for (var n = 0u; n < NS; n++) {
    h[n] = scratch[r + n];
    a[n] = scratch[r0 + n] * LOG2E;
  }
  let dd = scratch[r0 + NS];
  for (var tb = t0; tb < t1; tb += TB) {
    let nt = min(TB, t1 - tb);
    workgroupBarrier();  // the previous tile is consumed
    for (var i = lid; i < nt * NS; i += WG) {
      Bs[i] = f32(B[tb * NS + i]);
      Cs[i] = f32(C[tb * NS + i]);
    }
    workgroupBarrier();
    if (live) {
      for (var k = 0u; k < nt; k++) {
        let j = (tb + k) * p.Di + d;
        let dt = softplus(f32(delta[j]));
        let ut = f32(u[j]);
        let bu = dt * ut;
        var acc = 0.0;
        for (var n = 0u; n < NS; n++) {
          h[n] = exp2(dt * a[n]) * h[n] + bu * Bs[k * NS + n];
          acc += Cs[k * NS + n] * h[n];
        }
        y[j] = T((acc + dd * ut) * silu(f32(z[j])));
      }
    }
  }
}
