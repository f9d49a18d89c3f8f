#!/usr/bin/env bash
# The GPU kit: the tests and the benchmarks on a lent GPU machine, which has
# no Node.js and no network, in one prepared command.
#
#   bash scripts/gpu-check.sh pack [--local] [--kit DIR]
#       here: gathers the kit into .gpu-kit/ (git-ignored): a compressed Node
#       binary, the node_modules vitest and Dawn need (Dawn's linux-x64 binary
#       only), the benchmark bundle, the Vulkan loader's .deb and this script;
#       prints its size. --local leaves out Node and the loader (for a run here).
#   bash .gpu-kit/gpu-check.sh run [--local] [--tiny] [--phases a,b] [--deadline S]
#       there, through the device tool with carry [".gpu-kit"]: unpacks, then
#       runs the phases below in this order, the most important first, each
#       within what is left of the deadline (default 540 s). --local runs here
#       on this machine's adapter, --tiny on a tiny selection: npm test checks
#       the kit that way (test/e2e/gpu_kit.test.ts).
#
# Phases:
#   adapter      the adapter Dawn sees, its limits and features (subgroups,
#                shader-f16, timestamp-query), its f32 multiply-add rate and
#                copy bandwidth; a software adapter stops a GPU run
#   tests        every kernel, model and runtime test that needs no browser,
#                against the float64 references (f16 paths where the adapter has shader-f16)
#   kernels      the kernel benchmark with the tuning sweep
#   attention    decode attention in both forms over contexts (which one
#                DECODE_ATTENTION in src/kernels/tunings.ts should give the GPU)
#   compare      the four architectures side by side at the 135m preset, with
#                each kernel's time (--profile); reports under $OUT/compare
#   retention    RetNet's parallel and chunkwise retention kernels at the
#                ~130M RetNet's heads, and their crossover (RETNET_PARALLEL_MAX_T)
#   f16          the comparison again with f16 activations and KV cache (--f16;
#                f32 with the reason where there is no shader-f16); reports
#                under $OUT/compare-f16
# Everything goes to $OUT (the device tool's output folder; <kit>/out
# elsewhere) as it is produced: run.log, adapter.json, tests.json,
# bench-<suite>.json, the comparisons' folders and summary.json.
set -uo pipefail

die() { echo "gpu-check: $*" >&2; exit 1; }

pack() {
  local local_run=0 kit=.gpu-kit
  while [ $# -gt 0 ]; do
    case "$1" in
      --local) local_run=1 ;;
      --kit) kit="${2:?--kit needs a folder}"; shift ;;
      *) die "pack: unknown argument '$1'" ;;
    esac
    shift
  done
  cd "$(dirname "$0")/.." || die "no repository"
  [ -d node_modules/vitest ] && [ -d node_modules/webgpu ] || die "pack needs the project's node_modules: run npm ci first"
  export PATH="$PWD/node_modules/.bin:$PATH"
  rm -rf "$kit" && mkdir -p "$kit" || die "cannot make $kit"

  vite build --config bench/vite.config.ts --outDir "$kit/bench" --emptyOutDir --logLevel warn || die "the benchmark bundle did not build"

  # What the tests and Dawn load at run time: vitest, webgpu and the library's
  # dependencies, with everything they depend on; no type packages, and no CSS
  # compiler (vite loads it only for stylesheets).
  local mods
  mods=$(node --input-type=module - <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
const seen = new Set();
const visit = (name) => {
  if (seen.has(name) || name.startsWith('@types/') || name.startsWith('lightningcss')) return;
  const pj = `node_modules/${name}/package.json`;
  if (!existsSync(pj)) return;
  seen.add(name);
  const p = JSON.parse(readFileSync(pj, 'utf8'));
  for (const d of Object.keys({ ...p.dependencies, ...p.optionalDependencies, ...p.peerDependencies })) visit(d);
};
['vitest', 'webgpu', '@huggingface/tokenizers', '@huggingface/jinja'].forEach(visit);
console.log([...seen].map((n) => `node_modules/${n}`).join('\n'));
EOF
  ) || die "could not list the node_modules to carry"
  local level=6
  [ $local_run = 1 ] && level=0
  # shellcheck disable=SC2086
  tar -c --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' --exclude='node_modules/webgpu/dist/linux-arm64' \
    --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' $mods | xz -T0 -$level > "$kit/node_modules.tar.xz" || die "could not pack node_modules"

  if [ $local_run = 0 ]; then
    # Node, compressed once per version (xz -9 takes a minute or two) and kept in node_modules/.cache.
    local cache="node_modules/.cache/gpu-kit" node_xz
    node_xz="$cache/node-$(node --version)-$(uname -m).xz"
    mkdir -p "$cache"
    if [ ! -s "$node_xz" ]; then
      echo "Compressing $(command -v node) ($(node --version))..." >&2
      xz -9 -T0 -c "$(command -v node)" > "$node_xz.tmp" && mv "$node_xz.tmp" "$node_xz" || die "could not compress Node"
    fi
    cp "$node_xz" "$kit/node.xz"
    # The Vulkan loader, as the device tool's README says to bring it (amd64, whatever this machine is).
    mkdir -p "$kit/debs" /tmp/gpu-kit-apt/partial
    local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu-kit-apt'
    # shellcheck disable=SC2086
    apt-get $o update -qq >/dev/null && (cd "$kit/debs" && apt-get $o download libvulkan1 >/dev/null) || die "could not download libvulkan1"
  fi
  cp "$0" "$kit/gpu-check.sh"

  local bytes
  bytes=$(du -sb "$kit" | cut -f1)
  echo "GPU kit in $kit: $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }')"
  du -sh "$kit"/* | sed 's/^/  /'
  # The device tool carries 64 MiB with the working tree: keep room for it.
  [ "$bytes" -le $((48 * 1048576)) ] || die "the kit is over 48 MiB: it would not travel with the working tree"
}

run() {
  local local_run=0 tiny=0 deadline=540 phases=adapter,tests,kernels,attention,compare,retention,f16
  while [ $# -gt 0 ]; do
    case "$1" in
      --local) local_run=1 ;;
      --tiny) tiny=1 ;;
      --deadline) deadline="${2:?--deadline needs seconds}"; shift ;;
      --phases) phases="${2:?--phases needs a list}"; shift ;;
      *) die "run: unknown argument '$1'" ;;
    esac
    shift
  done
  local kit repo out start=$SECONDS
  kit=$(cd "$(dirname "$0")" && pwd)
  repo=$(dirname "$kit")
  out="${OUT:-$kit/out}"
  mkdir -p "$out" || die "cannot write to $out"
  exec > >(tee -a "$out/run.log") 2>&1
  echo "gpu-check run $(date -u +%FT%TZ) on $(uname -n), phases $phases${tiny:+}$([ $tiny = 1 ] && echo ' (tiny)'), deadline ${deadline} s"

  local node
  if [ -f "$kit/node.xz" ]; then
    node=/tmp/gpu-kit-node
    [ -x "$node" ] || { xz -dc "$kit/node.xz" > "$node.tmp" && chmod +x "$node.tmp" && mv "$node.tmp" "$node"; } || die "could not unpack Node"
  else
    node=$(command -v node) || die "no Node.js here and none in the kit (pack without --local)"
  fi
  echo "Node $("$node" --version)"
  if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    [ -n "$(ls "$kit"/debs/*.deb 2>/dev/null)" ] || die "no Vulkan loader here and none in the kit"
    for f in "$kit"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  # NVIDIA's Vulkan driver, where the loader does not find it by itself.
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -f "$nv" ]; then export VK_DRIVER_FILES=$nv; fi
  local stamp="$repo/node_modules/.gpu-kit-stamp" want
  want=$(cksum < "$kit/node_modules.tar.xz")
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    tar -xJf "$kit/node_modules.tar.xz" -C "$repo" || die "could not unpack node_modules"
    echo "$want" > "$stamp"
  fi
  cd "$repo" || die "no repository at $repo"

  local summary="[" sep="" status=0
  phase() {
    local name=$1 left code
    shift
    case ",$phases," in *",$name,"*) ;; *) return 0 ;; esac
    left=$((deadline - (SECONDS - start)))
    if [ $left -lt 20 ]; then
      echo "== $name: skipped, $left s left"
      summary+="$sep{\"phase\":\"$name\",\"exit\":null,\"seconds\":0}"; sep=,
      return 0
    fi
    echo "== $name ($left s left)"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=15 "$left" "$@"
    code=$?
    echo "== $name: exit $code after $((SECONDS - t0)) s"
    summary+="$sep{\"phase\":\"$name\",\"exit\":$code,\"seconds\":$((SECONDS - t0))}"; sep=,
    [ $code = 0 ] || status=1
    return $code
  }

  local bench=("$node" "$kit/bench/run.js")
  local tests=(test/kernels test/models test/runtime --exclude '**/tokenizer_real.test.ts')
  # The kit carries no onnxruntime-web: the peer runs in the browser bench (npm run bench:browser).
  local compare=(--preset 135m --profile --peer none) f16=(--preset 135m --peer none) retention=()
  if [ $tiny = 1 ]; then
    # Two architectures, then one in f16: the plumbing is what a tiny run checks (npm test compares all four).
    compare=(--preset tiny --archs transformer,mamba --prompts 8 --contexts 16 --repeats 1 --peer none)
    f16=(--preset tiny --archs transformer --prompts 8 --contexts 16 --repeats 1 --peer none)
    retention=(--prompts 32,64 --repeats 1)
    tests=(test/kernels/rmsnorm.test.ts test/kernels/tunings.test.ts)
  fi
  if ! phase adapter "${bench[@]}" --suite adapter $([ $tiny = 1 ] && echo --quick) --json "$out/adapter.json"; then
    echo "gpu-check: no adapter: nothing else can run"
  elif [ $local_run = 0 ] && "$node" -e "process.exit(JSON.parse(require('fs').readFileSync('$out/adapter.json', 'utf8')).report.software ? 0 : 1)"; then
    echo "gpu-check: Dawn found only a software adapter, not the GPU: its figures would say nothing (check the Vulkan loader and VK_DRIVER_FILES)"
    status=1
  else
    phase tests "$node" node_modules/vitest/vitest.mjs run "${tests[@]}" --reporter=default --reporter=json --outputFile.json="$out/tests.json"
    phase kernels "${bench[@]}" --suite kernels $([ $tiny = 1 ] && echo --quick --sweep=64x1 || echo --sweep) --json "$out/bench-kernels.json"
    phase attention "${bench[@]}" --suite attention $([ $tiny = 1 ] && echo --contexts 16,160) --json "$out/bench-attention.json"
    phase compare "${bench[@]}" --suite compare "${compare[@]}" --out "$out/compare"
    phase retention "${bench[@]}" --suite retention "${retention[@]}" --json "$out/bench-retention.json"
    phase f16 "${bench[@]}" --suite compare --f16 "${f16[@]}" --out "$out/compare-f16" --json "$out/bench-compare-f16.json"
  fi
  echo "$summary]" > "$out/summary.json"
  echo "gpu-check: done in $((SECONDS - start)) s, results in $out"
  return $status
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: gpu-check.sh pack [--local] [--kit DIR] | run [--local] [--tiny] [--phases a,b] [--deadline S]" ;;
esac
