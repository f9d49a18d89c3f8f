// moe_group: the (token, slot) entries of a prefill chunk grouped by expert,
// on the GPU, for the grouped matmul (moe_matmul_q4). Entry i = t * k + j is
// token t's slot j, routed to expert ids[i]. Into `plan`:
//   offsets (E + 1): exclusive prefix sum of the counts per expert; expert e's
//                    entries sit at positions offsets[e] .. offsets[e + 1]
//   perm (N):        the entry at each position: by expert, and ascending entry
//                    index (so token order) within an expert; NONE past the
//                    last valid entry. An id >= E is placed nowhere.
//   tiles (max_tiles, 2): (expert, first position) of each tile of TILE rows,
//                    experts in order, each segment cut from its start, so a
//                    tile holds one expert only; (NONE, NONE) past the last.
// The segments are not padded: a tile ends at min(start + TILE, offsets[e + 1]).
// Deterministic: the counts are sums (atomic adds of 1 in any order give the
// same counts), and each entry's position is its expert's start, plus the
// entries of that expert in earlier chunks, plus those before it in its chunk.
// One workgroup: count, scan the E counts (one invocation, E <= 128), then
// place the entries WG at a time in order (two barriers per chunk).
// ids: (N) u32; plan: (offsets_base + E + 1 + 2 max_tiles) u32, sections at the
// bases in Params. Needs: nothing.

struct Params { entries: u32, experts: u32, tile: u32, max_tiles: u32, perm_base: u32, offsets_base: u32, tiles_base: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> plan: array<u32>;

const WG = 256u;
const MAX_E = 128u;
const NONE = 0xffffffffu;
var<workgroup> counts: array<atomic<u32>, MAX_E>;
var<workgroup> placed: array<atomic<u32>, MAX_E>; // entries of each expert placed by earlier chunks
var<workgroup> start: array<u32, MAX_E>;          // offsets[e]
var<workgroup> first_tile: array<u32, MAX_E + 1u>; // first tile of each expert; [E]: tiles in use
var<workgroup> chunk: array<u32, WG>;              // the expert of each entry of the current chunk

// The expert of entry i, or NONE past the entries or for an id >= E.
fn expert_of(i: u32) -> u32 {
  if (i >= p.entries) { return NONE; }
  let e = ids[i];
  return select(NONE, e, e < p.experts);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = p.experts;
  for (var e = lid; e < E; e += WG) {
    atomicStore(&counts[e], 0u);
    atomicStore(&placed[e], 0u);
  }
  workgroupBarrier();
  for (var i = lid; i < p.entries; i += WG) {
    let e = expert_of(i);
    if (e != NONE) { atomicAdd(&counts[e], 1u); }
  }
  workgroupBarrier();
  // the exclusive scan over experts, and where each expert's tiles begin
  if (lid == 0u) {
    var s = 0u;
    var tl = 0u;
    for (var e = 0u; e < E; e++) {
      let c = atomicLoad(&counts[e]);
      start[e] = s;
      first_tile[e] = tl;
      plan[p.offsets_base + e] = s;
      s += c;
      tl += (c + p.tile - 1u) / p.tile;
    }
    plan[p.offsets_base + E] = s;
    first_tile[E] = tl;
  }
  workgroupBarrier();
  for (var e = lid; e < E; e += WG) {
    for (var tl = first_tile[e]; tl < first_tile[e + 1u]; tl++) {
      plan[p.tiles_base + 2u * tl] = e;
      plan[p.tiles_base + 2u * tl + 1u] = start[e] + (tl - first_tile[e]) * p.tile;
    }
  }
  for (var tl = first_tile[E] + lid; tl < p.max_tiles; tl += WG) {
    plan[p.tiles_base + 2u * tl] = NONE;
    plan[p.tiles_base + 2u * tl + 1u] = NONE;
  }
  for (var q = start[E - 1u] + atomicLoad(&counts[E - 1u]) + lid; q < p.entries; q += WG) {
    plan[p.perm_base + q] = NONE;
  }
  // place the entries, WG at a time in entry order
  let chunks = (p.entries + WG - 1u) / WG;
  for (var c = 0u; c < chunks; c++) {
    let i = c * WG + lid;
    let e = expert_of(i);
    chunk[lid] = e;
    workgroupBarrier();
    if (e != NONE) {
      var r = 0u;
      for (var j = 0u; j < lid; j++) { r += select(0u, 1u, chunk[j] == e); }
      plan[p.perm_base + start[e] + atomicLoad(&placed[e]) + r] = i;
    }
    workgroupBarrier();
    if (e != NONE) { atomicAdd(&placed[e], 1u); }
  }
}
