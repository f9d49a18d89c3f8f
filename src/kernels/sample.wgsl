// sample: out[o] = one token drawn from one row of logits, with Hugging Face
// generate()'s warpers in its order: scores = logits / temperature, top-k,
// top-p, then an inverse-CDF draw in index order with u = uniform01(seed,
// counter), so a (seed, counter) pair always gives the same token. The float64
// twin is sampleRef in src/reference/sampling.ts.
//
// Every filter keeps the tokens at or above a threshold, so the kept set is
// { i : key(z_i) >= tau }, key() being the order-preserving u32 image of the f32
// logit (dividing by T > 0 keeps the order, so keys are taken on the logits):
//   top-k: tau_k = the k-th largest key = the largest U with count(key >= U) >= k
//          (every token tied with the k-th stays, as HF's TopKLogitsWarper);
//   top-p: token x stays iff the mass of tokens scoring strictly above it is
//          < p * Z_k (Z_k: the mass left by top-k). Without ties this is HF's
//          TopPLogitsWarper (sort ascending, drop where cumsum <= 1 - p); with
//          ties at the cut, HF keeps the part of the tied group that torch.sort
//          happens to put last, and this keeps the whole group. In keys:
//          tau_p = the largest U with mass(key >= U) >= p * Z_k.
// Both are "the largest U with acc(key >= U) >= limit", found by an 8-way
// search of the key range: each pass counts and weighs the tokens at or above
// 8 evenly spaced pivots and keeps the sub-range holding the answer (3 bits a
// pass, 11 passes at most). As soon as the tokens at or above the range are
// at most 4 * WG (1024), one more pass gathers them into workgroup memory (in
// a fixed order, so every sum is deterministic), and the thresholds are read
// off exactly there: token x stays iff fewer than k, and less than p * Z_k of
// weight, score strictly above it. With top-k 50 on a 150k vocabulary that is
// 3-4 search passes over V and a gather; a top-p nucleus wider than 1024
// tokens takes the search to the end. Why not bisection: one workgroup's
// passes over V are latency-bound, and 3 bits a pass plus the gather is
// several times fewer of them. Why not a radix histogram: the mass needs float
// atomics (WGSL has none), and logit keys crowd into a few bins, where
// workgroup atomics serialise.
// The draw splits [0, V) into WG contiguous pieces, sums the kept exp((z - max)/T)
// of each, finds the piece where the running sum passes u * total, and repeats
// inside it (2 levels for V <= 65536, 3 above) down to one token.
// Cost with no filter: one pass for the key range, one for the draw.
//
// NaN and -inf logits are never drawn; +inf counts as the largest finite f32.
// When every logit is NaN or -inf, out[o] = 0xffffffff.
// logits: the row's V values start at element p.base of the binding (the
//         binding starts at the 256-byte boundary at or before the row);
// out: (n) u32, only out[p.out_index] is written. Needs: random.wgsl

struct Params {
  dim: u32,        // V
  base: u32,       // element of the row's first logit in the binding
  out_index: u32,  // element of out to write
  top_k: u32,      // 0 = off
  top_p: f32,      // 1 = off
  inv_temp: f32,   // 1 / temperature
  seed: u32,
  counter: u32,    // the decode step
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override WG: u32 = 256;      // a power of two, a multiple of 16

const NO_TOKEN = 0xffffffffu;
const F32_MAX_BITS = 0x7f7fffffu;

// Search state, shared by the workgroup and read with workgroupUniformLoad so
// the loops holding barriers stay in uniform control flow.
struct Search {
  lo: u32,      // the answer is in [lo, hi]
  hi: u32,
  limit: f32,   // k, or p (then p * Z_k after the first pass)
  fill: u32,    // > 0: this many candidates have key >= lo; gather them (see rank)
  j: u32,       // the pivot the last pass chose
}
struct Piece { beg: u32, end: u32, goal: f32 }

var<workgroup> key_hi: atomic<u32>;
var<workgroup> key_lo: atomic<u32>;
var<workgroup> n_cand: atomic<u32>;
var<workgroup> kept_lo: atomic<u32>;               // smallest key rank() keeps
var<workgroup> cut: u32;
var<workgroup> stats: vec3<u32>;                   // (largest key, smallest key, candidates)
var<workgroup> red: array<vec4<f32>, 2u * WG>;     // 8 sums per invocation to reduce; in rank() 4 * WG candidates (x, weight)
var<workgroup> part: array<vec4<f32>, WG / 4u>;    // their sums over groups of 16, two halves
var<workgroup> search: Search;
var<workgroup> scan: array<f32, WG>;               // running sums over the invocations
var<workgroup> run16: array<f32, WG / 16u>;        // running sum before each run of 16
var<workgroup> piece: Piece;

var<private> z_max: f32; // the largest logit
var<private> tau: u32;   // kept iff key >= tau
var<private> slot: u32;  // where this invocation's next gathered candidate goes

// The logit at i, +inf clamped to the largest finite f32 (exp stays finite).
fn logit(i: u32) -> f32 {
  let b = bitcast<u32>(f32(logits[p.base + i]));
  return bitcast<f32>(select(b, F32_MAX_BITS, b == 0x7f800000u));
}

// Order-preserving u32 image of x (-0 maps onto +0); 0 for NaN and -inf, which
// are never candidates (real keys start at 0x00800000). Tested on the bits:
// WGSL may assume floats are never NaN or infinite.
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) >= 0x7f800000u) { return 0u; }
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, b >= 0x80000000u);
}

fn value_of(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, k >= 0x80000000u));
}

// Unnormalised probability exp((z - max) / T); 1 for the largest logit.
fn weight(x: f32) -> f32 {
  return exp((x - z_max) * p.inv_temp);
}

// Sums over the workgroup, part 1: a and b of every invocation go to red, and
// each of WG/8 invocations adds one vec4 column over a group of 16 into
// part[h]. A fixed order, so the sums are deterministic, and the same for
// every pivot, so they fall as the pivot rises. Fewer barriers than a tree
// (they are what a software rasteriser pays most for).
fn reduce_part(lid: u32, a: vec4<f32>, b: vec4<f32>, h: u32) {
  red[2u * lid] = a;
  red[2u * lid + 1u] = b;
  workgroupBarrier();
  if (lid < WG / 8u) {
    let g = lid / 2u;
    let c = lid % 2u;
    var acc = vec4<f32>();
    for (var j = 16u * g; j < 16u * g + 16u; j++) { acc += red[2u * j + c]; }
    part[h * (WG / 8u) + lid] = acc;
  }
  workgroupBarrier();
}

// Part 2 (one invocation): the column sums of the group sums.
fn reduce_total() -> array<vec4<f32>, 4> {
  var tot: array<vec4<f32>, 4>;
  for (var q = 0u; q < 4u; q++) {
    let h = q / 2u;
    let c = q % 2u;
    for (var g = 0u; g < WG / 16u; g++) { tot[q] += part[h * (WG / 8u) + 2u * g + c]; }
  }
  return tot;
}

// Inclusive running sums of v over the invocations, left in scan[]. Done
// serially (runs of 16, then the runs' offsets), so they never decrease and
// rise only past an invocation with v > 0.
fn prefix(lid: u32, v: f32) {
  scan[lid] = v;
  workgroupBarrier();
  if (lid < WG / 16u) {
    var acc = 0.0;
    for (var j = 16u * lid; j < 16u * lid + 16u; j++) {
      acc += scan[j];
      scan[j] = acc;
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0.0;
    for (var g = 0u; g < WG / 16u; g++) {
      run16[g] = acc;
      acc += scan[16u * g + 15u];
    }
  }
  workgroupBarrier();
  let incl = run16[lid / 16u] + scan[lid];
  workgroupBarrier();
  scan[lid] = incl;
  workgroupBarrier();
}

// Pivot offsets j * w from lo for four j; those past the range never match
// (key - lo stays below 0xffffffff).
fn pivots(j: vec4<u32>, w: u32, r: u32) -> vec4<u32> {
  return select(j * w, vec4<u32>(0xffffffffu), j * w > vec4<u32>(r));
}

// Narrows s toward the largest key U in [s.lo, s.hi] with acc(key >= U) >=
// limit, acc counting tokens (mass = false, limit k) or summing their weights
// (mass = true, limit p: the first pass turns it into p * acc(key >= s.lo)).
// Needs acc(key >= s.lo) >= limit. Stops at the answer (lo == hi), or once the
// tokens at or above lo fit in rank() (then s.fill is their count, and each
// invocation's slot is set).
fn narrow(s0: Search, mass: bool, lid: u32) -> Search {
  var s = s0;
  // a pass leaves at most 1/8 of the range: 11 passes take 2^32 keys to one
  for (var it = 0u; it < 11u; it++) {
    if (s.lo >= s.hi || s.fill > 0u) { break; }
    let r = s.hi - s.lo;
    let w = r / 8u + 1u;
    let pv0 = pivots(vec4<u32>(0u, 1u, 2u, 3u), w, r);
    let pv1 = pivots(vec4<u32>(4u, 5u, 6u, 7u), w, r);
    var c0 = vec4<f32>(); // count at or above pivots 0..3, 4..7
    var c1 = vec4<f32>();
    var a0 = vec4<f32>(); // weight at or above them
    var a1 = vec4<f32>();
    for (var i = lid; i < p.dim; i += WG) {
      let x = logit(i);
      let k = key_of(x);
      if (k < s.lo) { continue; }
      var v = 0.0;
      if (mass) { v = weight(x); }
      let d = vec4<u32>(k - s.lo);
      let m0 = d >= pv0;
      let m1 = d >= pv1;
      c0 += select(vec4<f32>(), vec4<f32>(1.0), m0);
      c1 += select(vec4<f32>(), vec4<f32>(1.0), m1);
      a0 += select(vec4<f32>(), vec4<f32>(v), m0);
      a1 += select(vec4<f32>(), vec4<f32>(v), m1);
    }
    reduce_part(lid, c0, c1, 0u);
    reduce_part(lid, a0, a1, 1u);
    if (lid == 0u) {
      var tot = reduce_total(); // counts in [0], [1]; weights in [2], [3]; pivot j at [j / 4][j % 4]
      var lim = s.limit;
      if (mass && it == 0u) { lim = s.limit * tot[2].x; } // p * Z_k
      // acc falls as the pivot rises: take the last pivot still at the limit
      var j = 0u;
      for (var t = 1u; t < 8u; t++) {
        let acc = select(tot[t / 4u][t % 4u], tot[2u + t / 4u][t % 4u], mass);
        if (t * w <= r && acc >= lim) { j = t; }
      }
      let lo = s.lo + j * w;
      let hi = select(s.hi, lo + w - 1u, j < 7u && (j + 1u) * w <= r);
      let count = u32(tot[j / 4u][j % 4u]); // tokens with key >= lo, exact in f32
      search = Search(lo, hi, lim, select(0u, count, count <= 4u * WG), j);
    }
    s = workgroupUniformLoad(&search);
    if (s.fill > 0u) {
      // rank() gathers in the order of this pass: this invocation's tokens at
      // or above lo go after those of the invocations before it
      let mine = select(c1[max(s.j, 4u) - 4u], c0[min(s.j, 3u)], s.j < 4u);
      prefix(lid, mine);
      slot = u32(scan[lid] - mine);
    }
  }
  return s;
}

// Candidate i of rank(): (logit, weight).
fn cand(i: u32) -> vec2<f32> {
  let q = red[i / 2u];
  return select(q.xy, q.zw, i % 2u == 1u);
}

// (count, weight) of the n gathered candidates scoring strictly above x, in
// gather order (the same for every x, so it falls as x rises). Candidates are
// finite, so comparing logits is comparing keys.
fn above(x: f32, n: u32) -> vec2<f32> {
  var a = vec2<f32>();
  for (var q = 0u; q < n / 2u; q++) {
    let y = red[q];
    a += select(vec2<f32>(), vec2<f32>(1.0, y.y), y.x > x);
    a += select(vec2<f32>(), vec2<f32>(1.0, y.w), y.z > x);
  }
  if (n % 2u == 1u) {
    let y = red[n / 2u];
    a += select(vec2<f32>(), vec2<f32>(1.0, y.y), y.x > x);
  }
  return a;
}

// The threshold of the filters in use, exactly, once the s.fill candidates
// with key >= s.lo (s.lo at or below the answer) fit in workgroup memory: one
// pass gathers them, then token x stays iff fewer than k candidates (top-k)
// and less than p * Z_k of weight (top-p) score strictly above it. Z_k is
// s.limit's when z_known, else the gathered weight that top-k keeps.
fn rank(s: Search, use_k: bool, use_p: bool, z_known: bool, lid: u32) -> u32 {
  for (var i = lid; i < p.dim; i += WG) {
    let x = logit(i);
    if (key_of(x) >= s.lo && slot < 4u * WG) {
      let w = weight(x);
      if (slot % 2u == 0u) {
        red[slot / 2u].x = x;
        red[slot / 2u].y = w;
      } else {
        red[slot / 2u].z = x;
        red[slot / 2u].w = w;
      }
      slot += 1u;
    }
  }
  workgroupBarrier();
  let n = s.fill;
  let k = f32(p.top_k);
  // (count, weight) above each of this invocation's candidates lid + q * WG
  var ab: array<vec2<f32>, 4>;
  var z = 0.0;
  for (var q = 0u; q < 4u; q++) {
    let i = lid + q * WG;
    if (i < n) {
      let c = cand(i);
      ab[q] = above(c.x, n);
      if (!use_k || ab[q].x < k) { z += c.y; }
    }
  }
  var limit = s.limit;
  if (use_p && !z_known) {
    prefix(lid, z);
    limit = p.top_p * scan[WG - 1u];
  }
  var best = 0xffffffffu;
  for (var q = 0u; q < 4u; q++) {
    let i = lid + q * WG;
    if (i < n && (!use_k || ab[q].x < k) && (!use_p || ab[q].y < limit)) { best = min(best, key_of(cand(i).x)); }
  }
  atomicMin(&kept_lo, best);
  workgroupBarrier();
  if (lid == 0u) { cut = atomicLoad(&kept_lo); }
  return workgroupUniformLoad(&cut);
}

// Splits [beg, end) into WG contiguous pieces, sums the kept weights of each,
// and returns the piece where the running sum first exceeds the goal (goal_in
// itself, or goal_in * total when scale is set), with the goal made relative
// to the piece's start. The piece found is never empty (see prefix).
fn pick(beg: u32, end: u32, goal_in: f32, scale: bool, lid: u32) -> Piece {
  let len = (end - beg + WG - 1u) / WG;
  let b = min(beg + lid * len, end);
  let e = min(b + len, end);
  var sum = 0.0;
  for (var i = b; i < e; i++) {
    let x = logit(i);
    if (key_of(x) >= tau) { sum += weight(x); }
  }
  prefix(lid, sum);
  let incl = scan[lid];
  let total = scan[WG - 1u]; // > 0: the largest logit is always kept, with weight 1
  // u * total can round up to total: aim at most just below it, so some piece is hit
  let goal = min(select(goal_in, goal_in * total, scale), bitcast<f32>(bitcast<u32>(total) - 1u));
  let excl = select(0.0, scan[max(lid, 1u) - 1u], lid > 0u);
  if (incl > goal && excl <= goal) { piece = Piece(b, e, goal - excl); }
  return workgroupUniformLoad(&piece);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  // 1. The candidates' key range and count.
  if (lid == 0u) {
    atomicStore(&key_hi, 0u);
    atomicStore(&key_lo, 0xffffffffu);
    atomicStore(&n_cand, 0u);
    atomicStore(&kept_lo, 0xffffffffu);
  }
  workgroupBarrier();
  var hi = 0u;
  var lo = 0xffffffffu;
  var n = 0u;
  for (var i = lid; i < p.dim; i += WG) {
    let k = key_of(logit(i));
    if (k != 0u) {
      hi = max(hi, k);
      lo = min(lo, k);
      n += 1u;
    }
  }
  atomicMax(&key_hi, hi);
  atomicMin(&key_lo, lo);
  atomicAdd(&n_cand, n);
  workgroupBarrier();
  if (lid == 0u) { stats = vec3<u32>(atomicLoad(&key_hi), atomicLoad(&key_lo), atomicLoad(&n_cand)); }
  let st = workgroupUniformLoad(&stats);
  if (st.z == 0u) {
    if (lid == 0u) { out[p.out_index] = NO_TOKEN; }
    return;
  }
  z_max = value_of(st.x);

  // 2. top-k, then top-p over what top-k left. Once the candidates left fit
  //    in workgroup memory (from the start, for V <= 4 * WG), rank() settles
  //    every filter still open.
  let use_k = p.top_k > 0u && p.top_k < st.z;
  let use_p = p.top_p < 1.0;
  var s = Search(st.y, st.x, 0.0, 0u, 0u);
  if ((use_k || use_p) && st.z <= 4u * WG) {
    prefix(lid, f32(n));
    slot = u32(scan[lid]) - n;
    s.fill = st.z;
  }
  if (use_k) {
    s.limit = f32(p.top_k);
    s = narrow(s, false, lid);
  }
  var t = s.lo;
  if (s.fill > 0u) {
    if (s.lo < s.hi || use_p) { t = rank(s, use_k, use_p, false, lid); }
  } else if (use_p) {
    s.hi = st.x;
    s.limit = p.top_p;
    s = narrow(s, true, lid);
    t = s.lo;
    if (s.fill > 0u && s.lo < s.hi) { t = rank(s, false, true, true, lid); }
  }
  tau = t;

  // 3. The draw: narrow [0, V) to the token where the kept mass passes u * total.
  var beg = 0u;
  var end = p.dim;
  var goal = uniform01(p.seed, p.counter);
  var scale = true;
  for (var level = 0u; level < 4u; level++) { // WG^4 >= 2^32 tokens
    if (end - beg <= 1u) { break; }
    let pc = pick(beg, end, goal, scale, lid);
    beg = pc.beg;
    end = pc.end;
    goal = pc.goal;
    scale = false;
  }
  if (lid == 0u) { out[p.out_index] = beg; }
}
