import { expect, it } from 'vitest';
import { adapterClass, ATTENTION_FORM, attentionForm, MATVEC_TUNINGS, matvecTuning, NORM_LAYOUT, normLayout, PREFILL_MATMUL, prefillMatmul } from '../../src/kernels/tunings';

it('adapters fall into classes by vendor; a class with no measured tuning takes the general GPU one', () => {
  expect(adapterClass({ adapter: 'google / swiftshader / SwiftShader driver 5.0.0', software: true })).toBe('software');
  expect(adapterClass({ adapter: 'nvidia / hopper / NVIDIA H200', software: false })).toBe('nvidia');
  expect(adapterClass({ adapter: 'AMD Radeon RX 7900 XTX', software: false })).toBe('amd');
  expect(adapterClass({ adapter: 'apple / metal-3 / Apple M3', software: false })).toBe('apple');
  expect(adapterClass({ adapter: 'qualcomm / adreno-7xx', software: false })).toBe('gpu');
  expect(matvecTuning({ adapter: 'qualcomm / adreno-7xx', software: false })).toEqual(MATVEC_TUNINGS.gpu.tuning);
  expect(matvecTuning({ adapter: 'SwiftShader', software: true })).toEqual(MATVEC_TUNINGS.software.tuning);
  // Every entry names where it comes from.
  for (const m of Object.values(MATVEC_TUNINGS)) expect(m!.source.length).toBeGreaterThan(10);
});

it('the prefill matmul, the norms and decode attention: registers and threads on a software adapter, tiles and workgroups on a GPU', () => {
  const sw = { adapter: 'google / swiftshader / SwiftShader driver 5.0.0', software: true };
  const gpu = { adapter: 'nvidia / hopper / NVIDIA H200', software: false };
  expect([prefillMatmul(sw), normLayout(sw), attentionForm(sw)]).toEqual(['rows', 'thread', 'thread']);
  expect([prefillMatmul(gpu), normLayout(gpu), attentionForm(gpu)]).toEqual(['tiled', 'workgroup', 'workgroup']);
  for (const m of [...Object.values(PREFILL_MATMUL), ...Object.values(NORM_LAYOUT), ...Object.values(ATTENTION_FORM)]) expect(m!.source.length).toBeGreaterThan(10);
});
