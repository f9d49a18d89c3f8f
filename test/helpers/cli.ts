// The CLI as a user runs it, without touching the project's dist/: a staged
// copy of the package (bin/tessera-llm.js, package.json, a fresh build in dist/,
// a link to the bundled models)
// in a temporary folder under node_modules/.cache, where the build's external
// imports (webgpu, @huggingface/*) still resolve from the project's node_modules.

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

export const root = join(__dirname, '..', '..');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StagedCli {
  /** Runs `tessera-llm ...args` to the end. */
  run(args: string[]): Promise<Result>;
  /** Starts `tessera-llm ...args` with its stdio piped, for tests that act while it runs. */
  spawn(args: string[]): ReturnType<typeof spawn>;
  /** Removes the staged copy. */
  dispose(): void;
}

/** Builds the package into a temporary folder (vite only, as `npm run build` begins: the CLI needs no declarations). */
export async function stageCli(): Promise<StagedCli> {
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'tessera-cli-test-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(root, 'bin', 'tessera-llm.js'), join(dir, 'bin', 'tessera-llm.js'));
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'models'), join(dir, 'models')); // the bundled models, beside dist/ as in the package
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  await promisify(execFile)(process.execPath, [vite, 'build', '--outDir', join(dir, 'dist'), '--emptyOutDir', '--logLevel', 'error'], { cwd: root, timeout: 120_000 });
  const bin = join(dir, 'bin', 'tessera-llm.js');
  return {
    run: (args) =>
      new Promise((resolve) => {
        execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 120_000 }, (e, stdout, stderr) => {
          resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
        });
      }),
    spawn: (args) => spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A fingerprint of a folder (every file's path and content hash), or null when it does not exist. */
export function fingerprint(dir: string): string | null {
  if (!existsSync(dir)) return null;
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else hash.update(`${relative(dir, p)}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return hash.digest('hex');
}
