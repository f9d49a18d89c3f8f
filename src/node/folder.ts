// Checkpoint files in a local folder, read with positioned reads: the Node
// entry (src/node.ts) gives this reader to openSource, so a browser bundle
// never holds a Node module.

import * as fs from 'node:fs/promises';
import { checkAborted, checkName, checkRange, decodeUtf8, missingFile, type CheckpointSource, type SourceOptions } from '../models/loader/source';

const isMissing = (e: unknown) => (e as { code?: string }).code === 'ENOENT' || (e as { code?: string }).code === 'ENOTDIR';

/** Files in a local folder, read with positioned reads (Node only). */
export function fromPath(dir: string, opts: SourceOptions = {}): CheckpointSource {
  const describe = `folder "${dir}"`;
  const root = dir.replace(/[\\/]+$/, '');
  const path = (name: string) => {
    checkName(describe, name);
    checkAborted(opts.signal, `reading file "${name}" in ${describe}`);
    return root ? `${root}/${name}` : name;
  };
  const fail = (name: string, e: unknown): Error => (isMissing(e) ? missingFile(describe, name) : new Error(`reading file "${name}" in ${describe} failed: ${(e as Error).message}`));

  const src: CheckpointSource = {
    describe,
    async list() {
      checkAborted(opts.signal, `listing ${describe}`);
      try {
        const entries = await fs.readdir(root || '.', { withFileTypes: true });
        return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
      } catch (e) {
        if (isMissing(e)) throw new Error(`${describe} does not exist`);
        throw new Error(`listing ${describe} failed: ${(e as Error).message}`);
      }
    },
    // path() checks the name and the signal outside each try, so their Errors are not relabelled as read failures.
    async has(name) {
      const file = path(name);
      try {
        return (await fs.stat(file)).isFile();
      } catch (e) {
        if (isMissing(e)) return false;
        throw fail(name, e);
      }
    },
    async size(name) {
      const file = path(name);
      let st;
      try {
        st = await fs.stat(file);
      } catch (e) {
        throw fail(name, e);
      }
      if (!st.isFile()) throw new Error(`"${name}" in ${describe} is not a regular file`);
      return st.size;
    },
    async read(name, start, end) {
      checkRange(describe, name, start, end);
      const file = path(name);
      const out = new Uint8Array(end - start);
      let handle;
      try {
        handle = await fs.open(file, 'r');
      } catch (e) {
        throw fail(name, e);
      }
      try {
        // One read is capped near 2 GiB by the OS, so large tensors take several.
        for (let done = 0; done < out.length; ) {
          checkAborted(opts.signal, `reading file "${name}" in ${describe}`);
          const want = Math.min(out.length - done, 1 << 30);
          const { bytesRead } = await handle.read(out, done, want, start + done);
          if (bytesRead === 0) throw new Error(`the file ends before byte ${start + done}, inside the requested range [${start}, ${end})`);
          done += bytesRead;
        }
      } catch (e) {
        throw (e as Error).name === 'AbortError' ? e : fail(name, e);
      } finally {
        await handle.close();
      }
      return out;
    },
    async text(name) {
      const file = path(name);
      let bytes: Uint8Array;
      try {
        bytes = await fs.readFile(file);
      } catch (e) {
        throw fail(name, e);
      }
      return decodeUtf8(describe, name, bytes);
    },
  };
  return src;
}
