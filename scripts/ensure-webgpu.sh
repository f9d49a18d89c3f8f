#!/usr/bin/env bash
# Makes sure Node can run WebGPU before tests or benchmarks start.
# On Linux without a GPU, Dawn runs on SwiftShader, the Vulkan-on-CPU driver
# shipped by Debian's chromium package, through the Vulkan loader (libvulkan1).
# Chromium also serves the browser tests, beside Firefox ESR on Mesa's
# lavapipe (--tests: what npm test needs besides). Installs them when missing
# (apt-get, as root or through sudo); elsewhere it does nothing.
set -euo pipefail

[ "$(uname -s)" = Linux ] || exit 0
need=()
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null || need+=(libvulkan1)
if [ "${1:-}" = --tests ]; then
  command -v xz >/dev/null || need+=(xz-utils) # the GPU kit's test packs with xz
  # The browser tests' second engine: Firefox ESR (wgpu), on Mesa's lavapipe.
  [ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
  [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "WebGPU on this machine needs: ${need[*]} (SwiftShader and the Vulkan loader); install them with your package manager." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${need[*]} (WebGPU for Node, headless Chromium and Firefox)..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
