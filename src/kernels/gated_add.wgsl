// gated_add: acc[r, c] += sigmoid(gate[r]) * x[r, c]: a per-row gate in (0, 1)
// on a block's output before it joins another (Qwen2-MoE's shared expert,
// gated by sigmoid(shared_expert_gate · x)). f32 arithmetic.
// acc: (R, C) read_write; gate: (R); x: (R, C). Needs: common.wgsl

struct Params { n: u32, cols: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<T>;
@group(0) @binding(2) var<storage, read> gate: array<T>;
@group(0) @binding(3) var<storage, read> x: array<T>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let g = 1.0 / (1.0 + exp(-f32(gate[i / p.cols])));
  acc[i] = T(f32(acc[i]) + g * f32(x[i]));
}
