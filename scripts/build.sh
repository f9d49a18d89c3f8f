#!/usr/bin/env bash
# Builds the package into dist/ (or the folder given): the browser entry
# (index.js), the Node entry (node.js), the CLI, the engine's worker (worker.js), and one bundled declaration
# file (index.d.ts) that names its imports with their extensions and
# references WebGPU's types, so consumers type-check it under any resolution.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
types="$(mktemp -d)"
trap 'rm -rf "$types"' EXIT

vite build --outDir "$out" --emptyOutDir --logLevel warn
tsc -p tsconfig.build.json --outDir "$types"
TESSERA_TYPES="$types" TESSERA_OUT="$out" rollup -c scripts/rollup.dts.mjs --silent
# The worker entry exports nothing: importing it serves an engine in the worker.
printf 'export {};\n' > "$out/worker.d.ts"
