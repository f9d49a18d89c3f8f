// Float64 reference of RetNet (RetNetForCausalLM) as the flash-linear-attention
// project (`fla`) computes it, as plain loops. Files followed (fla-org/
// flash-linear-attention, read at commit bc3b101d, 2026-08, and checked back to
// the first RetNet commit 3396758b, 2024-02, where the math is the same):
//   fla/models/retnet/modeling_retnet.py   RetNetBlock.forward, RetNetModel, RetNetForCausalLM
//   fla/layers/multiscale_retention.py     MultiScaleRetention.__init__/forward
//   fla/ops/retention/*.py + fla/ops/simple_gla/naive.py   decay, scale, recurrence
//   fla/modules/rotary.py                  RotaryEmbedding (rotate_half, base 10000)
//   fla/modules/fused_norm_gate.py         FusedRMSNormGated (per-head norm * swish(g))
//   fla/modules/mlp.py                     GatedMLP (split; the fused gate_proj before 2025-02-09)
// Rotary angles and cos/sin are rounded to float32 where fla computes them in
// float32, and so are the decays; everything else is float64.
//
// Three forms of retention sit side by side (the paper's eqs. 1-8): the
// recurrent one the model uses by default, the parallel one
// O = (Q K^T ⊙ Dmask) V plus the state term, and the chunkwise one a GPU
// prefill kernel would use. The tests check them against each other.
//
// Glossary: T tokens, D hidden, H heads, Hkv key/value heads, Dk key dim per
// head, Dv value dim per head, I MLP width, V vocab, S (Dk, Dv) state per head,
// gamma per-head decay.

/** Weights by fla tensor name, as float32 (or float64) arrays. */
export type RefWeights = (name: string) => ArrayLike<number>;

export interface RetNetRefConfig {
  hiddenSize: number;          // D = hidden_size
  nLayers: number;             // num_hidden_layers
  nHeads: number;              // H = num_heads
  nKvHeads: number;            // Hkv = num_kv_heads ?? num_heads (k, v heads repeated H/Hkv times)
  keyDim: number;              // Dk = int(D * expand_k) / H
  valueDim: number;            // Dv = int(D * expand_v) / H
  intermediateSize: number;    // I = intermediate_size, or derived from hidden_ratio
  normEps: number;             // norm_eps: every RMSNorm, the per-head gate norm included
  vocabSize: number;
  tieWordEmbeddings: boolean;  // lm_head = model.embeddings
  mlpLayout: 'split' | 'fused'; // gate_proj + up_proj, or one gate_proj (2I, D): gate rows then up rows
  useOutputGate: boolean;      // use_output_gate: g_proj and swish(g) after the per-head norm
  fuseNorm: boolean;           // fuse_norm: same math; only renames the head norm (see retnetGateNormName)
  elementwiseAffine: boolean;  // elementwise_affine: the head norm has a weight (Dv)
  ropeTheta: number;           // fla hard-codes RotaryEmbedding(dim=Dk) with base 10000; not a config key
}

/** The name of the per-head norm's weight: fused with the gate, or a plain RMSNorm (multiscale_retention.py __init__). */
export function retnetGateNormName(cfg: RetNetRefConfig): 'g_norm_swish_gate' | 'g_norm' {
  return cfg.fuseNorm && cfg.useOutputGate ? 'g_norm_swish_gate' : 'g_norm';
}

/** Every tensor the checkpoint holds, with its (out, in) shape, in module order. */
export function retnetRefTensorShapes(cfg: RetNetRefConfig): Map<string, number[]> {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, keyDim: Dk, valueDim: Dv, intermediateSize: I, vocabSize: V } = cfg;
  const m = new Map<string, number[]>();
  m.set('model.embeddings.weight', [V, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'attn_norm.weight', [D]);
    m.set(p + 'attn.q_proj.weight', [H * Dk, D]);
    m.set(p + 'attn.k_proj.weight', [Hkv * Dk, D]);
    m.set(p + 'attn.v_proj.weight', [Hkv * Dv, D]);
    if (cfg.useOutputGate) m.set(p + 'attn.g_proj.weight', [H * Dv, D]);
    m.set(p + 'attn.o_proj.weight', [D, H * Dv]);
    if (cfg.elementwiseAffine) m.set(p + `attn.${retnetGateNormName(cfg)}.weight`, [Dv]);
    m.set(p + 'mlp_norm.weight', [D]);
    if (cfg.mlpLayout === 'fused') m.set(p + 'mlp.gate_proj.weight', [2 * I, D]);
    else {
      m.set(p + 'mlp.gate_proj.weight', [I, D]);
      m.set(p + 'mlp.up_proj.weight', [I, D]);
    }
    m.set(p + 'mlp.down_proj.weight', [D, I]);
  }
  m.set('model.norm.weight', [D]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

/**
 * gamma_h = 1 - 2^(-5-h) (fla/ops/retention/fused_recurrent.py and chunk.py:
 * `g_gamma = log(1 - 2^(-5 - arange(H)))`, in float32). Depends on the head
 * index only, not on H or any weight. Rounded to float32 as fla builds it: exact
 * for h <= 19, exactly 1 (no decay) from h = 20 on.
 */
export function retnetDecays(nHeads: number): Float64Array {
  return Float64Array.from({ length: nHeads }, (_, h) => Math.fround(1 - Math.pow(2, -5 - h)));
}

/** Per layer the retention state S (H, Dk, Dv) row-major, as fla's `[N, H, K, V]`; and the tokens seen (the rotary offset). */
export interface RefRetNetState { S: Float64Array[]; position: number }

export function createRefRetNetState(cfg: RetNetRefConfig): RefRetNetState {
  return { S: Array.from({ length: cfg.nLayers }, () => new Float64Array(cfg.nHeads * cfg.keyDim * cfg.valueDim)), position: 0 };
}

/** Sizes of one retention call: q, k (T, H, Dk), v and o (T, H, Dv), S (H, Dk, Dv), all row-major. */
export interface RetentionShape { T: number; H: number; Dk: number; Dv: number }

/**
 * Recurrent form (fla/ops/simple_gla/naive.py naive_recurrent_simple_gla; the
 * fused_recurrent kernel in fla/ops/common/fused_recurrent.py): per head,
 * S_t = gamma S_{t-1} + k_t^T v_t, then o_t = (scale q_t) S_t. The scale
 * Dk^-0.5 multiplies q inside the kernel; S holds unscaled k^T v. S is updated
 * in place.
 */
export function refRetentionRecurrent(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: RetentionShape, S: Float64Array, gammas: ArrayLike<number>, scale = 1 / Math.sqrt(s.Dk)): Float64Array {
  const { T, H, Dk, Dv } = s;
  const o = new Float64Array(T * H * Dv);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const qo = (t * H + h) * Dk;
      const vo = (t * H + h) * Dv;
      const so = h * Dk * Dv;
      // decay first, then add the outer product of this token's key and value
      for (let i = 0; i < Dk; i++) {
        const ki = k[qo + i];
        for (let j = 0; j < Dv; j++) S[so + i * Dv + j] = gammas[h] * S[so + i * Dv + j] + ki * v[vo + j];
      }
      // read with the scaled query: the current token is already in S
      for (let j = 0; j < Dv; j++) {
        let acc = 0;
        for (let i = 0; i < Dk; i++) acc += q[qo + i] * S[so + i * Dv + j];
        o[vo + j] = scale * acc;
      }
    }
  }
  return o;
}

/**
 * Parallel form (fla/ops/retention/naive.py; paper eq. 5) with the carried state:
 * o_n = scale (sum_{m<=n} gamma^(n-m) (q_n . k_m) v_m + gamma^(n+1) q_n S0),
 * and the closed-form final state S_T = gamma^T S0 + sum_m gamma^(T-1-m) k_m^T v_m.
 * Independent of the recurrent loop; used to check it. S is replaced by S_T.
 */
export function refRetentionParallel(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: RetentionShape, S: Float64Array, gammas: ArrayLike<number>, scale = 1 / Math.sqrt(s.Dk)): Float64Array {
  const { T, H, Dk, Dv } = s;
  const o = new Float64Array(T * H * Dv);
  const next = new Float64Array(S.length);
  for (let h = 0; h < H; h++) {
    const g = gammas[h];
    const so = h * Dk * Dv;
    for (let n = 0; n < T; n++) {
      const qo = (n * H + h) * Dk;
      const out = (n * H + h) * Dv;
      // (Q K^T ⊙ Dmask) row n, Dmask[n, m] = gamma^(n-m) for m <= n
      for (let m = 0; m <= n; m++) {
        let score = 0;
        for (let i = 0; i < Dk; i++) score += q[qo + i] * k[(m * H + h) * Dk + i];
        const w = score * Math.pow(g, n - m);
        for (let j = 0; j < Dv; j++) o[out + j] += w * v[(m * H + h) * Dv + j];
      }
      // what the state held before this call, decayed n+1 times
      const d0 = Math.pow(g, n + 1);
      for (let j = 0; j < Dv; j++) {
        let acc = 0;
        for (let i = 0; i < Dk; i++) acc += q[qo + i] * S[so + i * Dv + j];
        o[out + j] = scale * (o[out + j] + d0 * acc);
      }
    }
    for (let i = 0; i < Dk; i++) {
      for (let j = 0; j < Dv; j++) {
        let acc = Math.pow(g, T) * S[so + i * Dv + j];
        for (let m = 0; m < T; m++) acc += Math.pow(g, T - 1 - m) * k[(m * H + h) * Dk + i] * v[(m * H + h) * Dv + j];
        next[so + i * Dv + j] = acc;
      }
    }
  }
  S.set(next);
  return o;
}

/**
 * Chunkwise form (fla/ops/simple_gla/naive.py naive_chunk_simple_gla; paper
 * eq. 7), chunks of `chunk` tokens (the last may be shorter): inside a chunk
 * the parallel form; across chunks o_i += scale gamma^(i+1) q_i S_prev and
 * S_next = gamma^L S_prev + sum_j gamma^(L-1-j) k_j^T v_j (i, j local, L the
 * chunk's length). S is updated in place.
 */
export function refRetentionChunkwise(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: RetentionShape, S: Float64Array, gammas: ArrayLike<number>, chunk: number, scale = 1 / Math.sqrt(s.Dk)): Float64Array {
  const { T, H, Dk, Dv } = s;
  const o = new Float64Array(T * H * Dv);
  for (let c0 = 0; c0 < T; c0 += chunk) {
    const L = Math.min(chunk, T - c0);
    for (let h = 0; h < H; h++) {
      const g = gammas[h];
      const so = h * Dk * Dv;
      for (let i = 0; i < L; i++) {
        const qo = ((c0 + i) * H + h) * Dk;
        const out = ((c0 + i) * H + h) * Dv;
        const inter = Math.pow(g, i + 1);
        for (let dv = 0; dv < Dv; dv++) {
          // from the chunks before: the state, decayed i+1 times
          let acc = 0;
          for (let dk = 0; dk < Dk; dk++) acc += q[qo + dk] * S[so + dk * Dv + dv];
          o[out + dv] = inter * acc;
        }
        for (let j = 0; j <= i; j++) {
          let score = 0;
          for (let dk = 0; dk < Dk; dk++) score += q[qo + dk] * k[((c0 + j) * H + h) * Dk + dk];
          const w = score * Math.pow(g, i - j);
          for (let dv = 0; dv < Dv; dv++) o[out + dv] += w * v[((c0 + j) * H + h) * Dv + dv];
        }
        for (let dv = 0; dv < Dv; dv++) o[out + dv] *= scale;
      }
      // carry the state past this chunk
      const gL = Math.pow(g, L);
      for (let dk = 0; dk < Dk; dk++) {
        for (let dv = 0; dv < Dv; dv++) {
          let acc = gL * S[so + dk * Dv + dv];
          for (let j = 0; j < L; j++) acc += Math.pow(g, L - 1 - j) * k[((c0 + j) * H + h) * Dk + dk] * v[((c0 + j) * H + h) * Dv + dv];
          S[so + dk * Dv + dv] = acc;
        }
      }
    }
  }
  return o;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const silu = (v: number) => v * sigmoid(v); // swish

/**
 * The per-head output norm, fused with the gate (fla/modules/fused_norm_gate.py
 * layer_norm_gated_fwd_kernel with IS_RMS_NORM and ACTIVATION 'swish'): for each
 * row of `rows` and each head, over that head's Dv values only,
 * y = o / sqrt(mean(o^2) + eps) * w * g * sigmoid(g). `g` null: no gate (the
 * plain RMSNorm of use_output_gate false); `w` null: elementwise_affine false.
 */
export function refGatedRmsNorm(o: ArrayLike<number>, g: ArrayLike<number> | null, w: ArrayLike<number> | null, rows: number, H: number, Dv: number, eps: number): Float64Array {
  const y = new Float64Array(rows * H * Dv);
  for (let r = 0; r < rows * H; r++) {
    let ss = 0;
    for (let j = 0; j < Dv; j++) ss += o[r * Dv + j] ** 2;
    const rstd = 1 / Math.sqrt(ss / Dv + eps);
    for (let j = 0; j < Dv; j++) {
      const i = r * Dv + j;
      y[i] = o[i] * rstd * (w ? w[j] : 1) * (g ? silu(g[i]) : 1);
    }
  }
  return y;
}

/** RMSNorm of each row of x (rows, dim) (fla/modules/layernorm.py RMSNorm: x * rstd * w). */
function rmsnormRows(x: Float64Array, w: ArrayLike<number>, rows: number, dim: number, eps: number): Float64Array {
  return refGatedRmsNorm(x, null, w, rows, 1, dim, eps);
}

/** Y = X W^T for X (rows, W's in-width) and W (n, in) row-major, rows of W from `row0`. */
function linearRows(x: Float64Array, rows: number, w: ArrayLike<number>, n: number, row0 = 0): Float64Array {
  const k = x.length / rows;
  const y = new Float64Array(rows * n);
  for (let t = 0; t < rows; t++) {
    for (let r = 0; r < n; r++) {
      let acc = 0;
      for (let c = 0; c < k; c++) acc += w[(row0 + r) * k + c] * x[t * k + c];
      y[t * n + r] = acc;
    }
  }
  return y;
}

/** inv_freq as fla's RotaryEmbedding._compute_inv_freq builds it, each step in float32: 1 / base^(2i / Dk). */
export function retnetInvFreq(dim: number, base: number): Float64Array {
  return Float64Array.from({ length: dim / 2 }, (_, i) => {
    const expo = Math.fround(Math.fround(2 * i) / dim);
    return Math.fround(1 / Math.fround(Math.pow(base, expo)));
  });
}

/**
 * Rotary, in place, on every head of x (T, heads, Dk), the whole Dk rotated, rotate_half
 * (non-interleaved) pairs (i, i + Dk/2), token t at position pos0 + t
 * (fla/modules/rotary.py RotaryEmbedding.forward and rotary_embedding_kernel:
 * o0 = x0 cos - x1 sin, o1 = x0 sin + x1 cos; angles and cos/sin in float32).
 */
export function refRetNetRope(x: Float64Array, T: number, heads: number, Dk: number, pos0: number, invFreq: ArrayLike<number>): void {
  const half = Dk / 2;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((pos0 + t) * invFreq[i]); // torch.outer(t, inv_freq) in float32
      const c = Math.fround(Math.cos(angle));
      const s = Math.fround(Math.sin(angle));
      for (let h = 0; h < heads; h++) {
        const o = (t * heads + h) * Dk;
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = a * c - b * s;
        x[o + i + half] = a * s + b * c;
      }
    }
  }
}

/** Heads (T, Hkv, d) repeated to (T, H, d): head h reads KV head floor(h / (H / Hkv)) (einops `(h g)` in forward). */
function repeatHeads(x: Float64Array, T: number, Hkv: number, H: number, d: number): Float64Array {
  if (H === Hkv) return x;
  const group = H / Hkv;
  const y = new Float64Array(T * H * d);
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) y.set(x.subarray((t * Hkv + Math.floor(h / group)) * d, (t * Hkv + Math.floor(h / group) + 1) * d), (t * H + h) * d);
  return y;
}

export interface RetNetRefOptions {
  /** Which retention form the layers use (all give the same logits); default 'recurrent'. */
  form?: 'recurrent' | 'parallel' | 'chunkwise';
  /** Chunk length of the chunkwise form; default 4. */
  chunk?: number;
}

/**
 * Runs `tokens` after the state's position; returns the logits (T, V)
 * flattened and leaves the state after the last token. Layer by layer over
 * all T tokens (causal, so the same as token by token):
 *   h = x + o_proj(headnorm(retention(rope(q), rope(k), v)) * swish(g))   with q, k, v, g from RMSNorm_attn(x)
 *   x' = h + down(silu(gate(hn)) * up(hn))                             with hn = RMSNorm_mlp(h)
 * (modeling_retnet.py RetNetBlock.forward; multiscale_retention.py forward; mlp.py GatedMLP.forward).
 */
export function refRetNetForward(cfg: RetNetRefConfig, w: RefWeights, tokens: ArrayLike<number>, state = createRefRetNetState(cfg), opts: RetNetRefOptions = {}): Float64Array {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, keyDim: Dk, valueDim: Dv, intermediateSize: I, vocabSize: V, normEps: eps } = cfg;
  const T = tokens.length;
  if (H % Hkv !== 0) throw new Error(`refRetNetForward: ${H} heads over ${Hkv} KV heads`);
  if (Dk % 2 !== 0) throw new Error(`refRetNetForward: rotary needs an even key dim, got ${Dk}`);
  const gammas = retnetDecays(H);
  const invFreq = retnetInvFreq(Dk, cfg.ropeTheta);
  const emb = w('model.embeddings.weight');
  const head = cfg.tieWordEmbeddings ? emb : w('lm_head.weight');
  const shape = { T, H, Dk, Dv };
  const gateNorm = retnetGateNormName(cfg);

  // embedding lookup
  let x = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = tokens[t];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`refRetNetForward: token ${id} outside the vocabulary (${V})`);
    for (let i = 0; i < D; i++) x[t * D + i] = emb[id * D + i];
  }

  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    // 1. attn_norm, then the projections (no biases anywhere)
    const xn = rmsnormRows(x, w(p + 'attn_norm.weight'), T, D, eps);
    const q = linearRows(xn, T, w(p + 'attn.q_proj.weight'), H * Dk);
    const k = linearRows(xn, T, w(p + 'attn.k_proj.weight'), Hkv * Dk);
    const v = linearRows(xn, T, w(p + 'attn.v_proj.weight'), Hkv * Dv);
    // 2. rotary on q and k at the positions after the state's
    refRetNetRope(q, T, H, Dk, state.position, invFreq);
    refRetNetRope(k, T, Hkv, Dk, state.position, invFreq);
    // 3. retention per head (the scale Dk^-0.5 goes on q inside)
    const kk = repeatHeads(k, T, Hkv, H, Dk);
    const vv = repeatHeads(v, T, Hkv, H, Dv);
    const S = state.S[l];
    const o = opts.form === 'parallel' ? refRetentionParallel(q, kk, vv, shape, S, gammas)
      : opts.form === 'chunkwise' ? refRetentionChunkwise(q, kk, vv, shape, S, gammas, opts.chunk ?? 4)
      : refRetentionRecurrent(q, kk, vv, shape, S, gammas);
    // 4. per-head RMSNorm (over Dv) times swish(g), then o_proj and the residual
    const g = cfg.useOutputGate ? linearRows(xn, T, w(p + 'attn.g_proj.weight'), H * Dv) : null;
    const y = refGatedRmsNorm(o, g, cfg.elementwiseAffine ? w(p + `attn.${gateNorm}.weight`) : null, T, H, Dv, eps);
    const attn = linearRows(y, T, w(p + 'attn.o_proj.weight'), D);
    const h1 = Float64Array.from(x, (xv, i) => xv + attn[i]);
    // 5. mlp_norm and the gated MLP: down(silu(gate) * up)
    const hn = rmsnormRows(h1, w(p + 'mlp_norm.weight'), T, D, eps);
    const gw = w(p + 'mlp.gate_proj.weight');
    const gate = linearRows(hn, T, gw, I, 0);
    const up = cfg.mlpLayout === 'fused' ? linearRows(hn, T, gw, I, I) : linearRows(hn, T, w(p + 'mlp.up_proj.weight'), I);
    const act = Float64Array.from(gate, (gv, i) => silu(gv) * up[i]);
    const down = linearRows(act, T, w(p + 'mlp.down_proj.weight'), D);
    x = Float64Array.from(h1, (hv, i) => hv + down[i]);
  }

  // final norm and the LM head
  const xf = rmsnormRows(x, w('model.norm.weight'), T, D, eps);
  const logits = linearRows(xf, T, head, V);
  state.position += T;
  return logits;
}
