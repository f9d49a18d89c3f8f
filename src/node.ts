// Tessera's entry point in Node.js (package.json's "node" export condition):
// the public API of index.ts, plus what only Node has, given to the runtime
// here so that browser bundles, which take index.ts, hold no Node module:
// WebGPU through Dawn (the optional peer dependency `webgpu`) and checkpoint
// folders on disk.

import { setHostWebGpu } from './runtime/device';
import { setFolderReader } from './models/loader/source';
import { nodeWebGpu } from './node/webgpu';
import { fromPath } from './node/folder';
import { fileURLToPath } from 'node:url';

setHostWebGpu(nodeWebGpu);
setFolderReader((dir, opts) => fromPath(dir instanceof URL ? fileURLToPath(dir) : dir, opts));

export * from './index';
