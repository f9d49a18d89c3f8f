// WebGPU in Node.js: Dawn, Chromium's implementation, from the `webgpu`
// package (an optional peer dependency: browser users never download it). On
// a Linux machine with no GPU driver, the Vulkan loader is pointed at
// SwiftShader (Vulkan on the CPU, shipped by Debian's chromium package)
// before Dawn starts, so WebGPU still runs for real.

import * as fs from 'node:fs';
import { NO_WEBGPU_HELP } from '../runtime/device';
import { TesseraError } from '../runtime/errors';

// Debian's chromium package ships SwiftShader's Vulkan driver here.
const swiftshaderIcd = () => process.env.TESSERA_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

// Dawn's GPU object must outlive every device made from it: if it is garbage
// collected the process dies later at random. Keep it for the process lifetime.
let nodeGpu: GPU | undefined;
let nodeDriverNote = '';

/** Dawn's GPU, made once per process, with how it found a Vulkan driver. */
export async function nodeWebGpu(): Promise<{ gpu: GPU; driverNote: string }> {
  if (nodeGpu) return { gpu: nodeGpu, driverNote: nodeDriverNote };
  const forced = process.env.TESSERA_ADAPTER;
  if (process.env.VK_ICD_FILENAMES) {
    nodeDriverNote = `Vulkan driver from VK_ICD_FILENAMES (${process.env.VK_ICD_FILENAMES})`;
  } else {
    // A GPU shows up as a DRM render node or an NVIDIA device node. Driver
    // files alone prove nothing: Debian's chromium pulls in Mesa's ICDs
    // even on machines with no GPU at all.
    const gpuNodes = [
      ...(fs.existsSync('/dev/dri') ? fs.readdirSync('/dev/dri').filter((f) => f.startsWith('renderD')).map((f) => `/dev/dri/${f}`) : []),
      ...(fs.existsSync('/dev/nvidia0') ? ['/dev/nvidia0'] : []),
    ];
    if (forced === 'swiftshader' || (process.platform === 'linux' && gpuNodes.length === 0)) {
      if (!fs.existsSync(swiftshaderIcd())) {
        throw new Error(
          `No WebGPU adapter: this machine shows no GPU (no /dev/dri/renderD*, no /dev/nvidia0) and SwiftShader ` +
            `(${swiftshaderIcd()}) is not installed. On Debian/Ubuntu: apt-get install -y chromium libvulkan1. ${NO_WEBGPU_HELP}`,
        );
      }
      process.env.VK_ICD_FILENAMES = swiftshaderIcd();
      // The driver is chosen: Mesa's device-selection layer (mesa-vulkan-drivers) has nothing
      // to choose, and only prints "XDG_RUNTIME_DIR is invalid" on machines without a desktop.
      process.env.NODEVICE_SELECT ??= '1';
      nodeDriverNote = forced === 'swiftshader' ? 'SwiftShader (TESSERA_ADAPTER=swiftshader)' : 'SwiftShader (no GPU device on this machine)';
    } else {
      nodeDriverNote = `system GPU driver (${gpuNodes.join(', ') || process.platform})`;
    }
  }
  let mod: { create(options: string[]): GPU; globals: object };
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new TesseraError(
      'NO_WEBGPU',
      `No WebGPU in this Node.js: Dawn, the optional peer dependency 'webgpu', could not be loaded (${(e as Error).message}); install it with: npm install webgpu. ${NO_WEBGPU_HELP}`,
    );
  }
  Object.assign(globalThis, mod.globals); // GPUBufferUsage, GPUMapMode, GPUShaderStage ...
  nodeGpu = mod.create([]);
  return { gpu: nodeGpu, driverNote: nodeDriverNote };
}
