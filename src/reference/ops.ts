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
