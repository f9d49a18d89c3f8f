#!/usr/bin/env bash
# Makes sure Node can run WebGPU before tests or benchmarks start.
# On Linux without a GPU, Dawn runs on SwiftShader, the Vulkan-on-CPU driver
# shipped by Debian's chromium package, through the Vulkan loader (libvulkan1).
# Chromium also serves the browser tests. Installs them when missing (apt-get,
# as root or through sudo); elsewhere it does nothing.
set -euo pipefail

[ "$(uname -s)" = Linux ] || exit 0
need=()
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || need+=(libvulkan1)
command -v xz >/dev/null || need+=(xz-utils) # the GPU kit's test packs with xz
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "WebGPU on this machine needs: ${need[*]} (SwiftShader and the Vulkan loader); install them with your package manager." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${need[*]} (SwiftShader WebGPU for Node and headless Chromium)..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
