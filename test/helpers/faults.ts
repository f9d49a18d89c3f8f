// Fault injection on a real device: the same GPUDevice, wrapped so that the
// n-th createBuffer fails, either at once (a throw, as a validation failure
// does) or the way WebGPU reports running out of memory (an error popped
// from the 'out-of-memory' scope around it, the buffer itself unusable).

import { Gpu } from '../../src/runtime/gpu';

export interface FaultyGpu {
  gpu: Gpu;
  /** createBuffer calls seen so far. */
  readonly created: number;
}

export function faultyGpu(real: Gpu, opts: { throwAt?: number; oomAt?: number } = {}): FaultyGpu {
  let created = 0;
  let oomPending = false;
  const device = new Proxy(real.device, {
    get(target, key) {
      if (key === 'createBuffer') {
        return (desc: GPUBufferDescriptor) => {
          created++;
          if (created === opts.throwAt) throw new Error(`createBuffer '${desc.label}' failed (injected at call ${created})`);
          if (created === opts.oomAt) oomPending = true;
          return target.createBuffer(desc);
        };
      }
      if (key === 'popErrorScope') {
        return () => {
          const popped = target.popErrorScope();
          if (!oomPending) return popped;
          oomPending = false;
          return popped.then(() => ({ message: `injected out-of-memory at call ${opts.oomAt}` }));
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    gpu: Gpu.fromDevice(device, real.report),
    get created() {
      return created;
    },
  };
}
