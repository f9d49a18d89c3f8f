// The tiny models that ship in the package, one per architecture, trained on
// Tiny Shakespeare by tools/train (character-level, about 1M parameters):
// models/<name>/ beside dist/ in the installed package and beside src/ in a
// clone. `loadModel('bundled:<name>')` opens one: from the folder in Node,
// from the URL next to the package's code in a browser.

import { TesseraError } from './runtime/errors';

export const BUNDLED_MODELS = ['transformer', 'mamba', 'retnet', 'moe'] as const;
export type BundledModelName = (typeof BUNDLED_MODELS)[number];

/** The source string that names a bundled model: `bundled:mamba`. */
export const BUNDLED_PREFIX = 'bundled:';

/** A bundled model's name, from `mamba` or `bundled:mamba`; throws listing the bundled ones. */
export function bundledModelName(name: string, what = 'bundled model'): BundledModelName {
  const bare = name.startsWith(BUNDLED_PREFIX) ? name.slice(BUNDLED_PREFIX.length) : name;
  if (!(BUNDLED_MODELS as readonly string[]).includes(bare)) {
    throw new TesseraError('INVALID_ARGUMENT', `unknown ${what} ${JSON.stringify(bare)}: the bundled models are ${BUNDLED_MODELS.join(', ')}`);
  }
  return bare as BundledModelName;
}

/**
 * Where a bundled model's files are: a file: URL in Node, an http(s) URL in
 * a browser (the folder the page's server gives for the package's models/;
 * a bundler that moves the package's code elsewhere, as Vite's dependency
 * pre-bundling does, needs the folder served at that URL, or the URL passed
 * to loadModel instead of the name).
 */
export function bundledModelUrl(name: string): URL {
  // Concatenated, not a literal: bundlers would otherwise try to inline the folder as an asset.
  const folder = '../models/' + bundledModelName(name) + '/';
  return new URL(folder, import.meta.url);
}
