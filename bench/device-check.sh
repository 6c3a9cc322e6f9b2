#!/usr/bin/env bash
# On the GPU machine (no Node, no registry): unpack what bench/device-pack.sh packed, make
# Vulkan and CUDA findable, then run the device check; its flags pass through
# (bench/device-check.ts). The JSON goes to $OUT/device-check.json when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=device-pack
WORK=${TMPDIR:-/tmp}/framehost-device
mkdir -p "$WORK"

if ! command -v node >/dev/null 2>&1; then
  tar -xJf "$PACK/node.tar.xz" -C "$WORK"
  export PATH="$WORK:$PATH"
fi
[ -d node_modules/onnxruntime-node ] || tar -xJf "$PACK/node_modules.tar.xz"

# Dawn opens libvulkan.so.1; without root it is unpacked beside, not installed.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  mkdir -p "$WORK/vulkan"
  if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$PACK/libvulkan1.deb" "$WORK/vulkan"
  else (cd "$WORK/vulkan" && ar x "$OLDPWD/$PACK/libvulkan1.deb" data.tar.xz && tar -xJf data.tar.xz); fi
  export LD_LIBRARY_PATH="$WORK/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA's Vulkan driver comes with the NVIDIA driver, but a container may lack its manifest.
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 \
  && ldconfig -p 2>/dev/null | grep -q libGLX_nvidia.so.0; then
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' > "$WORK/nvidia_icd.json"
  export VK_ICD_FILENAMES="$WORK/nvidia_icd.json"
fi
# CUDA's libraries (cuBLAS, cuDNN…), for a placed CUDA provider: from a Python environment's
# nvidia-* wheels (PyTorch's) when the system has none.
if ! ldconfig -p 2>/dev/null | grep -q libcublasLt; then
  for lib in $(find / -xdev -maxdepth 9 -path '*site-packages/nvidia/*/lib' -type d 2>/dev/null | head -40); do
    LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  export LD_LIBRARY_PATH
fi

echo "device check: node $(node --version), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')" >&2
exec node --import tsx bench/device-check.ts "$@"
