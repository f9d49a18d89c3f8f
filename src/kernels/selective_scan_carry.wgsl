// selective_scan_carry: pass 2 of the chunked selective scan (selective_scan.wgsl
// has the whole scheme). Per channel d and state n, in parallel over both and in
// order over the chunks only: the state at the start of each chunk,
//   H[0] = state[d, n],   H[c + 1] = exp(A[d, n] * Sdt[c, d]) * H[c] + S[c, d, n]
// written over S (which it replaces), and state[d, n] = H[chunks], the state
// after the last token. It also stages A and D in record 0 of the scratch, so
// that pass 3 reads every per-channel constant from one place and binds only 7
// storage buffers (WebGPU's portable limit per stage is 8; pass 3 would need 9).
//
// A: (Di, N) f32; D: (Di) f32; state: (Di, N) f32, read and rewritten;
// scratch: (1 + chunks, Di, N + 1) f32: record (0, d) <- [A[d, 0..N), D[d]];
// record (1 + c, d) holds [S[c, d, 0..N), Sdt[c, d]] from pass 1 and leaves with
// [H[c, d, 0..N), Sdt[c, d]]. One invocation per (d, n): the only writer of its slots.
// Needs: common.wgsl

struct Params { Di: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> D: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;

override WG: u32 = 256;
override NS: u32 = 16;  // N, the state size

const U = 8u;  // chunks whose loads are in flight together

const LOG2E = 1.4426950408889634;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.Di * NS) { return; }
  let d = i / NS;
  let n = i % NS;
  let an = A[i];
  let a = an * LOG2E;
  let rs = NS + 1u;  // record size
  scratch[d * rs + n] = an;
  if (n == 0u) { scratch[d * rs + NS] = D[d]; }
  var h = state[i];
  // U chunks at a time, all their loads issued before any store: the loads do
  // not wait on h, but a compiler cannot move them above stores to the same
  // buffer, so one chunk per iteration would pay a memory latency per chunk.
  for (var c0 = 0u; c0 < p.chunks; c0 += U) {
    var s: array<f32, U>;
    var sdt: array<f32, U>;
    for (var k = 0u; k < U; k++) {
      let r = ((1u + min(c0 + k, p.chunks - 1u)) * p.Di + d) * rs;
      s[k] = scratch[r + n];
      sdt[k] = scratch[r + NS];
    }
    for (var k = 0u; k < U; k++) {  // a constant trip count keeps s, sdt in registers
      if (c0 + k < p.chunks) {
        scratch[((1u + c0 + k) * p.Di + d) * rs + n] = h;
        h = exp2(a * sdt[k]) * h + s[k];
      }
    }
  }
  state[i] = h;
}
