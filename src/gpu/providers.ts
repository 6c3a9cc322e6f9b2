/**
 * Execution-provider selection: which ONNX Runtime providers to try, in which order, and why.
 *
 * - `cpu`: the CPU provider only.
 * - `webgpu`: onnxruntime-node's bundled WebGPU provider (Dawn over Vulkan on Linux), nothing
 *   else: if it cannot start, the model fails to load (a user who asked for a GPU should not get
 *   a CPU 50× slower without noticing).
 * - `cuda`, `tensorrt`: the same, for NVIDIA's providers, whose libraries onnxruntime-node does
 *   not ship (`npm run gpu:cuda`, docs/gpu.md).
 * - `auto`: CUDA when its provider library sits beside the onnxruntime-node binding, else WebGPU
 *   when the machine shows a GPU device, else the CPU; every GPU provider falls back to the CPU.
 *   Trying WebGPU only when a GPU device exists keeps CPU-only machines quiet and fast to start
 *   (Dawn writes its Vulkan warnings to stderr and takes 30-200 ms to find no adapter).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const PROVIDER_CHOICES = ['auto', 'cpu', 'webgpu', 'cuda', 'tensorrt'] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];
export type ProviderName = Exclude<ProviderChoice, 'auto'>;

export interface ProviderPlan {
  /** Providers to try, in order. */
  readonly providers: readonly ProviderName[];
  /** True under `auto`: a GPU provider that fails or disagrees with the CPU gives way to it. */
  readonly fallback: boolean;
  readonly reason: string;
}

export function isProviderChoice(value: unknown): value is ProviderChoice {
  return typeof value === 'string' && (PROVIDER_CHOICES as readonly string[]).includes(value);
}

/** Folder holding onnxruntime-node's native binding and the provider libraries beside it. */
export function bindingDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const binRoot = join(root, 'bin');
    for (const napi of readdirSync(binRoot)) {
      const dir = join(binRoot, napi, process.platform, process.arch);
      if (existsSync(dir)) return dir;
    }
  } catch {
    // fall through: no binding folder means no CUDA libraries either
  }
  return undefined;
}

export function cudaInstalled(dir = bindingDir()): boolean {
  return dir !== undefined && existsSync(join(dir, 'libonnxruntime_providers_cuda.so'));
}

/** A GPU the kernel exposes: NVIDIA's device nodes, or a DRM render node (AMD, Intel, NVIDIA). */
export function gpuDevicePresent(dev = '/dev'): boolean {
  try {
    if (existsSync(join(dev, 'nvidiactl'))) return true;
    return readdirSync(join(dev, 'dri')).some((name) => name.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** The one hint for a CUDA install, word for word the README's (section GPU). */
export const CUDA_HINT =
  'CUDA, online: npm pkg set allowScripts.onnxruntime-node=true --json && ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node; offline: npm run gpu:cuda -- --from <folder or .tgz>; README, GPU';

export function planProviders(choice: ProviderChoice, hasCuda = cudaInstalled(), hasGpu = gpuDevicePresent()): ProviderPlan {
  switch (choice) {
    case 'cpu':
      return { providers: ['cpu'], fallback: false, reason: 'CPU requested' };
    case 'webgpu':
      return { providers: ['webgpu'], fallback: false, reason: 'WebGPU requested' };
    case 'cuda':
      return { providers: ['cuda'], fallback: false, reason: 'CUDA requested' };
    case 'tensorrt':
      return { providers: ['tensorrt'], fallback: false, reason: 'TensorRT requested' };
    case 'auto':
      if (hasCuda) return { providers: ['cuda', 'cpu'], fallback: true, reason: 'auto: CUDA provider library found beside the onnxruntime-node binding' };
      if (hasGpu) return { providers: ['webgpu', 'cpu'], fallback: true, reason: 'auto: a GPU device exists (/dev/nvidiactl or /dev/dri/renderD*)' };
      return { providers: ['cpu'], fallback: true, reason: `auto: no GPU device found (${CUDA_HINT})` };
    default:
      throw new RangeError(`unknown execution provider ${JSON.stringify(String(choice))}: ${PROVIDER_CHOICES.join(', ')}`);
  }
}

/**
 * What runs the model, as the system names it. For a GPU provider this is the machine's GPU
 * (NVIDIA's own name, else the PCI ids of the first render node): onnxruntime-node does not tell
 * which adapter Dawn or CUDA picked, so on a machine with several GPUs it may be another one.
 */
export function describeAdapter(provider: ProviderName, proc = '/proc/driver/nvidia/gpus', sys = '/sys/class/drm'): string {
  if (provider === 'cpu') return cpus()[0]?.model.trim() ?? 'unknown CPU';
  try {
    for (const gpu of readdirSync(proc)) {
      const model = /^Model:\s*(.+)$/m.exec(readFileSync(join(proc, gpu, 'information'), 'utf8'))?.[1];
      if (model) return model.trim();
    }
  } catch {
    // no NVIDIA driver: try the DRM render nodes below
  }
  try {
    for (const node of readdirSync(sys).filter((n) => n.startsWith('renderD'))) {
      const id = (f: string) => readFileSync(join(sys, node, 'device', f), 'utf8').trim();
      return `PCI ${id('vendor')}:${id('device')}`;
    }
  } catch {
    // no render node either
  }
  return 'unknown GPU';
}
