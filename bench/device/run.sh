#!/usr/bin/env bash
# Runs on the lent GPU machine (see prepare.sh): unpacks Node, Dawn and the Vulkan loader, then
# prints the adapter, the gradient-check table and the benchmark table on the real GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp
mkdir -p /tmp/n .device/node_modules/webgpu/dist/linux-x64
xz -dc .device/node.xz > /tmp/n/node && chmod +x /tmp/n/node
xz -dc .device/dawn.node.xz > .device/node_modules/webgpu/dist/linux-x64/dawn.node
NODE=/tmp/n/node
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
for cmd in adapter "gradcheck" "bench ${BENCH_ARGS:-}"; do
  echo "=== sgilo $cmd"
  timeout 240 $NODE .device/app/main.mjs $cmd 2>&1 | grep -v '^Warning: maxDynamic' | tee -a "$OUT/device-log.txt"
done
