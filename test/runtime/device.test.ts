// Runs in its own process (vitest forks per file), so the first requestDevice()
// here is the first in the process: the no-SwiftShader error can be provoked.
import { describe, expect, it } from 'vitest';
import { requestDevice } from '../../src/runtime/device';
import { SKIP_GPU } from '../helpers/gpu';

describe.skipIf(SKIP_GPU)('requestDevice', () => {
  it('without a GPU and without SwiftShader, says what to install', async () => {
    if (process.env.VK_ICD_FILENAMES) return expect(process.env.VK_ICD_FILENAMES).toBeTruthy(); // driver chosen by the caller: nothing to provoke
    process.env.TESSERA_ADAPTER = 'swiftshader';
    process.env.TESSERA_SWIFTSHADER_ICD = '/nonexistent/vk_swiftshader_icd.json';
    try {
      await expect(requestDevice()).rejects.toThrow(/No WebGPU adapter: .*SwiftShader .*apt-get install -y chromium libvulkan1/);
    } finally {
      // Delete, never reassign process.env: a plain object would stop reaching the native environment.
      delete process.env.TESSERA_ADAPTER;
      delete process.env.TESSERA_SWIFTSHADER_ICD;
    }
  });

  it('returns a device with the adapter limits and reports what it got', async () => {
    const { device, report } = await requestDevice();
    expect(report.backend).toBe('node-dawn');
    expect(report.adapter.length).toBeGreaterThan(0);
    expect(report.software).toBe(/swiftshader/i.test(report.adapter));
    expect(report.precision).toBe('f32');
    expect(report.precisionReason).toMatch(/default/);
    // The limits asked for are the adapter's maxima, at least WebGPU's defaults.
    expect(device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(report.limits.maxStorageBufferBindingSize).toBe(device.limits.maxStorageBufferBindingSize);
    expect(report.features.subgroups).toBe(device.features.has('subgroups'));
    device.destroy();
  });

  it('asking for f16 on an adapter without shader-f16 falls back to f32 and says why', async () => {
    const { device, report } = await requestDevice({ preferF16: true });
    if (report.features.shaderF16) expect(report.precision).toBe('f16');
    else expect(report.precisionReason).toMatch(/lacks shader-f16/);
    device.destroy();
  });
});
