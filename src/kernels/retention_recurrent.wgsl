// retention_recurrent: RetNet retention in its recurrent form (Sun et al. 2023,
// eq. 6), the tokens walked in order (decode, T = 1, and short prompts). Per
// head h with decay gamma = decay[h]:
//   S = gamma S + k_tᵀ v_t          (S: Dk × Dv, f32)
//   o_t = scale · q_t S
// retention_parallel.wgsl and retention_state.wgsl are the parallel form,
// retention_chunkwise.wgsl the carry of the chunkwise form; all give the same o and S.
//
// q, k: (T, H, Dk) row-major; v, out: (T, H, Dv), read and written as vec4 (Dv % 4 == 0);
// decay: (H) f32; state: (H, Dk, Dv) f32, S before the first token, rewritten
// with S after the last.
//
// One workgroup per (head, CV vec4 columns of S); its WG = R × CV threads are
// R row lanes × CV column lanes: a thread keeps rows r, r + R, ... (RPT of them)
// of its 4 columns in registers for the whole call, so S is read once and
// written once however many tokens there are. The update is elementwise; the
// output q_t S sums over the rows, across the R row lanes through workgroup
// memory (two barriers a token, none when R = 1).
// Needs: common.wgsl

struct Params { tokens: u32, H: u32, Dk: u32, Dv: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> k: array<T>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<T>>;

override R: u32 = 1;          // row lanes
override CV: u32 = 64;        // column lanes (vec4 columns per workgroup)
override WG: u32 = R * CV;
override RPT: u32 = 16;       // rows per thread: ceil(Dk / R) <= RPT_MAX

const RPT_MAX = 16u;          // register arrays need a constant size; loops run to RPT

var<workgroup> partial: array<vec4<f32>, WG>;  // (R, CV): each row lane's share of q_t S

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let DV4 = p.Dv / 4u;
  let blocks = (DV4 + CV - 1u) / CV;       // column blocks per head
  let g = group_index(wid, nwg);
  let h = g / blocks;
  if (h >= p.H) { return; }               // a spare workgroup of a grid split over x and y
  let c = tid % CV;
  let r = tid / CV;
  let j4 = (g % blocks) * CV + c;          // this thread's vec4 column of S
  let live = j4 < DV4;
  let jc = min(j4, DV4 - 1u);              // a valid column for the idle lanes' loads
  let gamma = decay[h];

  var s: array<vec4<f32>, RPT_MAX>;        // S[r + R a, 4 j4 .. 4 j4 + 3]
  for (var a = 0u; a < RPT; a++) {
    let i = min(r + R * a, p.Dk - 1u);
    s[a] = state[(h * p.Dk + i) * DV4 + jc];
  }
  for (var t = 0u; t < p.tokens; t++) {
    let row = (t * p.H + h);
    let vt = vec4<f32>(v[row * DV4 + jc]);
    var acc = vec4<f32>(0.0);
    for (var a = 0u; a < RPT; a++) {
      let i = r + R * a;
      if (i < p.Dk) {
        s[a] = gamma * s[a] + f32(k[row * p.Dk + i]) * vt;
        acc += f32(q[row * p.Dk + i]) * s[a];
      }
    }
    if (R == 1u) {
      if (live) { out[row * DV4 + j4] = vec4<T>(p.scale * acc); }
    } else {
      partial[tid] = acc;
      workgroupBarrier();
      if (r == 0u && live) {
        for (var l = 1u; l < R; l++) { acc += partial[l * CV + c]; }
        out[row * DV4 + j4] = vec4<T>(p.scale * acc);
      }
      workgroupBarrier();  // partial is consumed before the next token writes it
    }
  }
  if (!live) { return; }
  for (var a = 0u; a < RPT; a++) {
    let i = r + R * a;
    if (i < p.Dk) { state[(h * p.Dk + i) * DV4 + j4] = s[a]; }
  }
}
