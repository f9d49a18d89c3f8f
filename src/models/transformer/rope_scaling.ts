// Llama 3.x rotary frequency scaling (Hugging Face `_compute_llama3_parameters`
// in modeling_rope_utils.py): wavelengths longer than the original context /
// low_freq_factor are slowed by `factor`, shorter than original /
// high_freq_factor are kept, and those between are blended smoothly.

import type { RopeScaling } from './config';

export function llama3InvFreq(invFreq: Float32Array, s: RopeScaling): Float32Array {
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > lowWavelen ? f / s.factor : f;
    if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (scaled / s.factor) + smooth * scaled;
  });
}
