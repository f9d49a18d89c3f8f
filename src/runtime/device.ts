// One way to get a ready GPUDevice, in the browser (navigator.gpu) and in
// Node.js (Dawn through the `webgpu` package). On a Linux machine with no GPU
// driver, Node is pointed at SwiftShader (Vulkan on the CPU, shipped by
// Debian's chromium package) before Dawn starts, so WebGPU still runs for real.

export interface DeviceReport {
  /** Where WebGPU came from. */
  backend: 'browser' | 'node-dawn';
  /** Adapter description: vendor, architecture, device, description (whatever is non-empty). */
  adapter: string;
  /** True for CPU implementations (SwiftShader): timings say nothing about a GPU. */
  software: boolean;
  /** Optional features we asked for and got. */
  features: { shaderF16: boolean; subgroups: boolean; timestampQuery: boolean };
  /** The limits the device was created with (the ones the models care about; the binding size after maxBindingBytes). */
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxComputeInvocationsPerWorkgroup: number;
  };
  /** Activation precision the runtime will use, and why. */
  precision: 'f32' | 'f16';
  precisionReason: string;
  /** How Node found its Vulkan driver (empty in the browser). */
  driverNote: string;
}

export interface DeviceOptions {
  /** Use f16 activations when the adapter has `shader-f16` (default false: f32 is exact against the references). */
  preferF16?: boolean;
  powerPreference?: GPUPowerPreference;
  /**
   * 'adapter' (default) asks for the adapter's own maxima of the limits the
   * models need; 'default' keeps WebGPU's portable defaults (128 MiB per
   * binding), to see how Tessera behaves on the most modest devices.
   */
  limits?: 'adapter' | 'default';
  /**
   * Caps the bytes one binding may hold below what the device allows, to see
   * how a model fits a smaller device (many phones stop at WebGPU's default
   * of 128 MiB) on a larger one: large vocabularies are then split in parts.
   */
  maxBindingBytes?: number;
}

export interface DeviceHandle { device: GPUDevice; report: DeviceReport }

// Debian's chromium package ships SwiftShader's Vulkan driver here.
const swiftshaderIcd = () => process.env.TESSERA_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

const NO_WEBGPU_HELP =
  'In a browser, use a recent Chrome or Edge (or Firefox/Safari with WebGPU enabled). ' +
  'In Node.js, install the `webgpu` package; on a Linux machine without a GPU driver, install ' +
  "Debian's `chromium` and `libvulkan1` packages (SwiftShader), which Tessera then finds by itself.";

// Dawn's GPU object must outlive every device made from it: if it is garbage
// collected the process dies later at random. Keep it for the process lifetime.
let nodeGpu: GPU | undefined;
let nodeDriverNote = '';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function nodeWebGpu(): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  const fs = await import('node:fs');
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
      nodeDriverNote = forced === 'swiftshader' ? 'SwiftShader (TESSERA_ADAPTER=swiftshader)' : 'SwiftShader (no GPU device on this machine)';
    } else {
      nodeDriverNote = `system GPU driver (${gpuNodes.join(', ') || process.platform})`;
    }
  }
  let mod: { create(options: string[]): GPU; globals: object };
  try {
    const name = 'webgpu'; // a variable keeps bundlers from pulling Dawn into browser builds
    mod = await import(/* @vite-ignore */ name);
  } catch (e) {
    throw new Error(`No WebGPU in this Node.js: the 'webgpu' package could not be loaded (${(e as Error).message}). ${NO_WEBGPU_HELP}`);
  }
  Object.assign(globalThis, mod.globals); // GPUBufferUsage, GPUMapMode, GPUShaderStage ...
  nodeGpu = mod.create([]);
  return nodeGpu;
}

function describeAdapter(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length ? [...new Set(parts)].join(' / ') : 'unknown adapter';
}

/**
 * Returns a ready GPUDevice with the limits the models need and the optional
 * features the adapter offers, plus a report of what it got. Throws an Error
 * that says what to install when there is no WebGPU at all.
 */
export async function requestDevice(options: DeviceOptions = {}): Promise<DeviceHandle> {
  const browserGpu = (globalThis as { navigator?: Navigator }).navigator?.gpu;
  let gpu: GPU;
  let backend: DeviceReport['backend'];
  if (browserGpu) {
    gpu = browserGpu;
    backend = 'browser';
  } else if (isNode) {
    gpu = await nodeWebGpu();
    backend = 'node-dawn';
  } else {
    throw new Error(`No WebGPU: navigator.gpu is missing in this environment. ${NO_WEBGPU_HELP}`);
  }

  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new Error(
      `No WebGPU adapter: requestAdapter() returned null (${backend === 'node-dawn' ? nodeDriverNote + '; is libvulkan1 installed?' : 'WebGPU may be disabled or blocklisted'}). ${NO_WEBGPU_HELP}`,
    );
  }

  const cap = options.maxBindingBytes;
  if (cap !== undefined && !(Number.isInteger(cap) && cap >= 4096)) throw new Error(`requestDevice: maxBindingBytes must be an integer >= 4096, got ${cap}`);
  const requiredLimits: Record<string, number> = {};
  if (options.limits !== 'default') for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const has = (f: GPUFeatureName) => adapter.features.has(f);
  const requiredFeatures = (['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[]).filter(has);
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'tessera' });

  const info = adapter.info ?? (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const adapterName = describeAdapter(info);
  const software = /swiftshader|llvmpipe|lavapipe|cpu/i.test(adapterName) || (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true;
  const shaderF16 = device.features.has('shader-f16');
  const precision = options.preferF16 && shaderF16 ? 'f16' : 'f32';
  const precisionReason = precision === 'f16'
    ? 'f16 activations: asked for and the adapter has shader-f16'
    : options.preferF16
      ? 'f32 activations: f16 was asked for but the adapter lacks shader-f16'
      : 'f32 activations: the default (exact against the float64 references)';

  return {
    device,
    report: {
      backend,
      adapter: adapterName,
      software,
      features: { shaderF16, subgroups: device.features.has('subgroups'), timestampQuery: device.features.has('timestamp-query') },
      limits: {
        maxStorageBufferBindingSize: Math.min(device.limits.maxStorageBufferBindingSize, cap ?? Infinity),
        maxBufferSize: device.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
        maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      },
      precision,
      precisionReason,
      driverNote: backend === 'node-dawn' ? nodeDriverNote : '',
    },
  };
}
