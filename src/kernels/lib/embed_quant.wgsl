// embed_quant.wgsl: the entry point of embed_q4 and embed_q8, which differ
// only in how many codes a word holds (see embed_q4.wgsl). The kernel defines
// p (tokens, dim, vocab, first, total, group, nan), codes, scales, ids, out,
// WG, WORD_CODES (codes per u32 word) and code(word, j): the j-th code.
// Needs: common.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let words = p.dim / WORD_CODES; // code words per row
  let i = group_index(wid, nwg) * WG + lid;
  if (i >= p.tokens * words) { return; }
  let t = i / words;
  let w = i % words;
  let id = ids[t] - p.first; // wraps above vocab for ids below first
  let o = t * p.dim + w * WORD_CODES;
  if (id >= p.vocab) {
    // Only the last part writes the NaN rows, so that parts do not overwrite each other's rows.
    if (ids[t] >= p.total && p.first + p.vocab == p.total) {
      for (var j = 0u; j < WORD_CODES; j++) { out[o + j] = T(p.nan); }
    }
    return;
  }
  let groups = (p.dim + p.group - 1u) / p.group;
  let dm = unpack2x16float(scales[id * groups + (w * WORD_CODES) / p.group]); // (d, m)
  let q = codes[id * words + w];
  for (var j = 0u; j < WORD_CODES; j++) {
    out[o + j] = T(dm.y + f32(code(q, j)) * dm.x);
  }
}
