// Float64 CPU references of the kernels, as plain loops. The tests and the
// benchmark's verify-before-timing step compare the GPU against these. This
// folder imports nothing from runtime/ or kernels/.

export type Vec = ArrayLike<number>;

/** RMSNorm over rows of x (rows, dim), as Hugging Face LlamaRMSNorm. */
export function rmsnorm(x: Vec, w: Vec, rows: number, dim: number, eps: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    // mean of squares of the row
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    // normalise, then scale by the learned weight
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
  return out;
}

/** LayerNorm over rows of x (rows, dim), as torch.nn.LayerNorm: biased variance, eps inside the sqrt. */
export function layernorm(x: Vec, w: Vec, b: Vec | null, rows: number, dim: number, eps: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    // mean of the row
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[r * dim + i];
    const mean = sum / dim;
    // biased variance (divide by dim, not dim - 1), from the centred values
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += (x[r * dim + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    // normalise, scale, shift
    for (let i = 0; i < dim; i++) out[r * dim + i] = (x[r * dim + i] - mean) * inv * w[i] + (b ? b[i] : 0);
  }
  return out;
}

/** Embedding lookup: row ids[t] of table (vocab, dim) for each token; an id outside [0, vocab) gives a row of NaN. */
export function embed(table: Vec, ids: ArrayLike<number>, vocab: number, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    const valid = Number.isInteger(id) && id >= 0 && id < vocab;
    for (let i = 0; i < dim; i++) out[t * dim + i] = valid ? table[id * dim + i] : NaN;
  }
  return out;
}

/**
 * Float64 RoPE table for positions start .. start+count-1: (count, rotDim/2, 2) of
 * (cos, sin) of the angle pos * theta^(-2i/rotDim), as the RoPE paper writes it.
 */
export function ropeTable(rotDim: number, theta: number, start: number, count: number): Float64Array {
  const half = rotDim / 2;
  const out = new Float64Array(count * half * 2);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < half; i++) {
      // frequency of pair i, then the angle at this position
      const angle = (start + t) * theta ** (-(2 * i) / rotDim);
      out[(t * half + i) * 2] = Math.cos(angle);
      out[(t * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return out;
}

/**
 * Rotary position embedding of x (T, H, Dh), given cosSin (T, rotDim/2, 2) of (cos, sin).
 * Dims >= rotDim pass through (partial rotary).
 *   neox (Hugging Face Llama): x' = x * cos + rotate_half(x) * sin over the first rotDim dims,
 *     rotate_half(x) = cat(-x[half:], x[:half]), cos = cat(cos_f, cos_f)  (pairs i, i + half)
 *   interleaved (GPT-J, Meta's original): x' = x * cos + rotate_every_two(x) * sin,
 *     rotate_every_two(x)[2i] = -x[2i+1], [2i+1] = x[2i], cos repeated per pair  (pairs 2i, 2i+1)
 */
export function rope(x: Vec, cosSin: Vec, T: number, H: number, Dh: number, rotDim: number, layout: 'neox' | 'interleaved'): Float64Array {
  const half = rotDim / 2;
  const out = Float64Array.from(x as ArrayLike<number>);
  for (let t = 0; t < T; t++) {
    // cos and sin spread over the rotDim dims the way each layout pairs them
    const cos = new Float64Array(rotDim);
    const sin = new Float64Array(rotDim);
    for (let j = 0; j < rotDim; j++) {
      const f = layout === 'neox' ? j % half : Math.floor(j / 2);
      cos[j] = cosSin[(t * half + f) * 2];
      sin[j] = cosSin[(t * half + f) * 2 + 1];
    }
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * Dh;
      // the rotated partner of each dim, with its sign
      const rot = new Float64Array(rotDim);
      for (let j = 0; j < rotDim; j++) {
        if (layout === 'neox') rot[j] = j < half ? -x[base + j + half] : x[base + j - half];
        else rot[j] = j % 2 === 0 ? -x[base + j + 1] : x[base + j - 1];
      }
      for (let j = 0; j < rotDim; j++) out[base + j] = x[base + j] * cos[j] + rot[j] * sin[j];
    }
  }
  return out;
}

/** SiLU (swish): x * sigmoid(x). */
export function silu(x: Vec): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => v / (1 + Math.exp(-v)));
}

/** Exact GELU (Hugging Face "gelu"): x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), written with erfc so x << 0 keeps its precision. */
export function gelu(x: Vec): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => 0.5 * v * erfc(-v / Math.SQRT2));
}

/** Tanh GELU (Hugging Face "gelu_pytorch_tanh" / "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(x: Vec): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
}

/** erf(a) for |a| < 2 by its Maclaurin series, 2/sqrt(pi) * sum_n (-1)^n a^(2n+1) / (n! (2n+1)) (A&S 7.1.5). */
function erfSeries(a: number): number {
  let term = a;
  let sum = a;
  for (let n = 1; n < 60; n++) {
    term *= (-a * a) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * erfc(a) for a >= 2 by its continued fraction (A&S 7.1.14), evaluated from the tail:
 * exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))); 60 terms reach float64 precision at a = 2.
 */
function erfcFraction(a: number): number {
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}

/** The error function to float64 accuracy: the series below 2, the continued fraction of erfc above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  const r = a < 2 ? erfSeries(a) : 1 - erfcFraction(a);
  return x < 0 ? -r : r;
}

/** 1 - erf(x), keeping its relative precision where it is tiny (x >> 0). */
export function erfc(x: number): number {
  if (x >= 2) return erfcFraction(x);
  if (x <= -2) return 2 - erfcFraction(-x);
  return 1 - erfSeries(x); // >= erfc(2) ~ 0.005: the subtraction loses under 8 bits
}

/** Elementwise a + b or a * b; b has a's size, or is a row of a's last dim broadcast over rows. */
export function binary(op: 'add' | 'mul', a: Vec, b: Vec): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const bv = b[i % b.length]; // i % b.length == i when b has a's size
    out[i] = op === 'add' ? a[i] + bv : a[i] * bv;
  }
  return out;
}

/** SwiGLU gate of the Llama MLP: silu(gate) * up. */
export function swiglu(gate: Vec, up: Vec): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
  return out;
}

/** Softmax over rows of x (rows, dim), max-subtracted as in llama2.c. */
export function softmax(x: Vec, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    // the row's max, for numerical stability
    let max = -Infinity;
    for (let i = 0; i < dim; i++) max = Math.max(max, x[r * dim + i]);
    // exponentiate and sum
    let sum = 0;
    for (let i = 0; i < dim; i++) {
      out[r * dim + i] = Math.exp(x[r * dim + i] - max);
      sum += out[r * dim + i];
    }
    // normalise
    for (let i = 0; i < dim; i++) out[r * dim + i] /= sum;
  }
  return out;
}
