// common.wgsl: helpers every kernel may use.

// Linear index of this workgroup over a grid split across x and y by
// kernel.ts grid() when it exceeds the per-dimension limit.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
