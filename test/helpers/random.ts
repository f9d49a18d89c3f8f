// Seeded random numbers for tests: every case draws fresh inputs from its own seed.

/** SplitMix32-style generator: uniform floats in [0, 1). */
export function rng(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}

/** n standard-normal values (Box-Muller) times `scale`, as float32. */
export function randn(seed: number, n: number, scale = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t) * scale;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * scale;
  }
  return out;
}

/** n uniform values in [lo, hi), as float32. */
export function randu(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * u());
}

/** n integers in [0, max). */
export function randint(seed: number, n: number, max: number): Int32Array {
  const u = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(u() * max));
}
