// Float64 reference of a linear layer without bias, in Hugging Face's layout:
// W is (N, K) = (out, in), y = x @ W^T. The q4 kernels are checked against it
// run on the dequantized weights (runtime/q4.ts dequantizeQ4), so the only
// difference left is the GPU's f32 arithmetic.

import type { Vec } from './ops';

/** y (T, N) = x (T, K) @ W^T, W (N, K) row-major. */
export function linear(x: Vec, w: Vec, T: number, K: number, N: number): Float64Array {
  if (x.length !== T * K || w.length !== N * K) {
    throw new Error(`linear: x has ${x.length} values for (${T}, ${K}), w has ${w.length} for (${N}, ${K})`);
  }
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      // dot product of token t's input with output row n of W
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[t * K + k] * w[n * K + k];
      y[t * N + n] = sum;
    }
  }
  return y;
}
