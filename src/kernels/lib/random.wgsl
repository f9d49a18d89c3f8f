// random.wgsl: counter-based random numbers. Nothing is kept between
// dispatches: a draw depends only on (seed, counter), so it can be replayed.
// Mirrored in src/reference/sampling.ts (pcgHash, uniform01).

// PCG hash: one step of PCG's LCG and its RXS-M-XS output permutation, a
// bijection of u32 (Jarzynski & Olano, "Hash Functions for GPU Rendering",
// JCGT 2020).
fn pcg_hash(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// A uniform in [0, 1): the top 24 bits of pcg_hash(counter + pcg_hash(seed)),
// so every value is exact in f32 and the largest is 1 - 2^-24. For a fixed
// seed, distinct counters give distinct hashes (both steps are bijections).
fn uniform01(seed: u32, counter: u32) -> f32 {
  return f32(pcg_hash(counter + pcg_hash(seed)) >> 8u) * (1.0 / 16777216.0);
}
