// swiglu: out[i] = silu(gate[i]) * up[i], the gated activation of the Llama MLP
// (Shazeer 2020, "GLU Variants Improve Transformer"), fused so the silu of the
// gate never makes a round trip through memory.
// gate: (n) row-major; up: (n); out: (n). One invocation per element.
// Needs: common.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<T>;
@group(0) @binding(2) var<storage, read> up: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.n) { return; }
  let g = f32(gate[i]);
  // g * sigmoid(g), with exp only of -|g| so it cannot overflow
  let e = exp(-abs(g));
  let s = select(e / (1.0 + e), 1.0 / (1.0 + e), g >= 0.0);
  out[i] = T(g * s * f32(up[i]));
}
