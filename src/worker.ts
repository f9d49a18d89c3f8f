// The engine's Web Worker. createWorkerEngine() starts this module; a web app
// that builds its own worker file imports it there instead
// (`import 'tessera-llm/worker'`), and its bundler packs the runtime into it.

import { serveEngine, type Endpoint } from './engine/serve';

serveEngine(self as unknown as Endpoint);
