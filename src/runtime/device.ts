// One way to get a ready GPUDevice, in the browser (navigator.gpu) and in
// Node.js, where the package's Node entry (src/node.ts) gives WebGPU through
// Dawn (node/webgpu.ts). Nothing here touches a Node module, so a browser
// bundle holds none.

import { TesseraError } from './errors';

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
  /**
   * f16 activations, KV cache and conv state when the adapter has `shader-f16`
   * (default false: f32 is exact against the references, and no measurement
   * on a real GPU yet says f16 is faster; it halves the memory of the state).
   */
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

const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

export const NO_WEBGPU_HELP =
  'In a browser, use a recent Chrome or Edge (or Firefox/Safari with WebGPU enabled). ' +
  'In Node.js, install the `webgpu` package (npm install webgpu); on a Linux machine without a GPU driver, install ' +
  "Debian's `chromium` and `libvulkan1` packages (SwiftShader), which Tessera then finds by itself.";

/** WebGPU where there is no navigator.gpu, with a note on how it found a driver: Node's entry point gives Dawn (node/webgpu.ts). */
export type HostWebGpu = () => Promise<{ gpu: GPU; driverNote: string }>;
let hostWebGpu: HostWebGpu | null = null;

/** Called once by a host's entry point (src/node.ts): browsers have navigator.gpu and need none. */
export function setHostWebGpu(fn: HostWebGpu): void {
  hostWebGpu = fn;
}

/**
 * The adapter by its names where it gives them; where it gives none (Firefox
 * leaves them empty), by what is known of it: fallback or not, and its features.
 */
export function describeAdapter(info: GPUAdapterInfo | undefined, features: ReadonlySet<string>): string {
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s): s is string => !!s && s.length > 0);
  if (parts.length) return [...new Set(parts)].join(' / ');
  const fallback = (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  const kind = fallback === true ? 'a fallback (software) adapter' : fallback === false ? 'a hardware adapter' : 'an adapter';
  const shown = ['shader-f16', 'subgroups', 'timestamp-query'].filter((f) => features.has(f));
  return `${kind} that gives no name (features: ${shown.length ? shown.join(', ') : 'none of shader-f16, subgroups, timestamp-query'})`;
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
  let driverNote = '';
  if (browserGpu) {
    gpu = browserGpu;
    backend = 'browser';
  } else if (hostWebGpu) {
    ({ gpu, driverNote } = await hostWebGpu());
    backend = 'node-dawn';
  } else {
    throw new TesseraError('NO_WEBGPU', `No WebGPU: navigator.gpu is missing in this environment (in Node.js, import the package by its name, whose Node entry brings Dawn). ${NO_WEBGPU_HELP}`);
  }

  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new TesseraError(
      'NO_WEBGPU',
      `No WebGPU adapter: requestAdapter() returned null (${backend === 'node-dawn' ? driverNote + '; is libvulkan1 installed?' : 'WebGPU may be disabled or blocklisted'}). ${NO_WEBGPU_HELP}`,
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
  const adapterName = describeAdapter(info, device.features as ReadonlySet<string>);
  const software = /swiftshader|llvmpipe|lavapipe|cpu/i.test(adapterName) || (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true;
  const shaderF16 = device.features.has('shader-f16');
  const precision = options.preferF16 && shaderF16 ? 'f16' : 'f32';
  const precisionReason = precision === 'f16'
    ? 'f16: preferF16 was asked for and the adapter has shader-f16 (sums, the SSM state and the logits stay f32)'
    : options.preferF16
      ? 'f32: preferF16 was asked for, but the adapter lacks shader-f16'
      : `f32: the default (preferF16 not asked for${shaderF16 ? '; the adapter has shader-f16' : ''})`;

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
      driverNote,
    },
  };
}
