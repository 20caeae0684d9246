#!/usr/bin/env bash
# Runs on the lent GPU machine (see prepare.sh): unpacks Node, Dawn and the Vulkan loader, then
# prints, each command under its own timeout so the whole run stays under 8 minutes:
#   the adapter; the gradient-check table (matmul, the convolutions and flash attention on
#   their workgroup-tiled GPU kernels, the default there: the first run of those kernels on a GPU);
#   the tiled matmul tile sweep at 1024^3, 2048^3, 4096^3 (GFLOP/s per tile shape);
#   the implicit-GEMM conv tile sweep at StyleGAN2 config-f modulated-conv layers (64^2 512->512,
#   the 128^2 upsampling 512->256, 256^2 128->128, 1024^2 32->32; forward and forward + x/style
#   gradients, each checked against the general kernels, which are the first row);
#   matmul 1024^3 / 2048^3 / 4096^3 against tfjs-backend-webgpu in the same process, with the FMA peak;
#   StyleGAN2 config-f 1024^2 forward and forward+backward (N = 1, 4) and an SGILO step with the
#   paper-size ViT on the features after block 3.
# QUICK=1 runs the same commands in their quick forms (a path check on any adapter).
set -uo pipefail
cd "$(dirname "$0")/../.."
# The Vulkan loader debs go into / on the lent machine only (QUICK=1 is the check on a machine with its own).
if [ -d .gl ] && [ "${QUICK:-0}" != 1 ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp
if [ -f .device/node.xz ]; then
  mkdir -p /tmp/n .device/node_modules/webgpu/dist/linux-x64
  xz -dc .device/node.xz > /tmp/n/node && chmod +x /tmp/n/node
  xz -dc .device/dawn.node.xz > .device/node_modules/webgpu/dist/linux-x64/dawn.node
  NODE=/tmp/n/node
else
  NODE=node # a machine with Node of its own (the quick check on the development machine)
fi
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
if [ "${QUICK:-0}" = 1 ]; then
  SWEEP="bench matmul --sweep --quick"; CONV="bench matmul --sweep --conv --quick"; PEER="bench matmul --sizes 64,128"; PAPER="bench paper-size --quick"
else
  SWEEP="bench matmul --sweep"; CONV="bench matmul --sweep --conv"; PEER="bench matmul --sizes 1024,2048,4096"; PAPER="bench paper-size"
fi
status=0
run() { # seconds, command...
  local limit=$1; shift
  echo "=== sgilo $* (timeout ${limit} s)" | tee -a "$OUT/device-log.txt"
  timeout "$limit" $NODE .device/app/main.mjs "$@" 2>&1 | grep -v '^Warning: maxDynamic' | tee -a "$OUT/device-log.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "=== exit $rc (124: timed out)" | tee -a "$OUT/device-log.txt"; status=1; }
}
start=$(date +%s)
# The timeouts add up to 470 s.
run 20 adapter
run 90 gradcheck
run 90 $SWEEP
run 80 $CONV
run 80 $PEER
run 110 $PAPER
echo "=== total $(( $(date +%s) - start )) s" | tee -a "$OUT/device-log.txt"
exit $status
