/**
 * Execution-provider selection. `auto` picks CUDA (or TensorRT) when onnxruntime-node's CUDA
 * provider library is installed beside its binding, else the CPU, and says which and why in one
 * log line. The CPU build ships with the npm package; the CUDA libraries arrive only with
 * `npm install-scripts approve onnxruntime-node` + `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type ProviderChoice = 'auto' | 'cpu' | 'cuda' | 'tensorrt';

export interface ProviderPlan {
  /** Providers to try, in order; CPU is always last. */
  readonly providers: readonly ('cuda' | 'tensorrt' | 'cpu')[];
  readonly reason: string;
}

/** Folder holding onnxruntime-node's native binding and the provider libraries beside it. */
function bindingDir(): string | undefined {
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

export function planProviders(choice: ProviderChoice, hasCuda = cudaInstalled()): ProviderPlan {
  switch (choice) {
    case 'cpu':
      return { providers: ['cpu'], reason: 'CPU requested' };
    case 'cuda':
      return { providers: ['cuda', 'cpu'], reason: 'CUDA requested' };
    case 'tensorrt':
      return { providers: ['tensorrt', 'cuda', 'cpu'], reason: 'TensorRT requested' };
    default:
      throw new RangeError(`unknown execution provider ${JSON.stringify(String(choice))}: auto, cpu, cuda or tensorrt`);
    case 'auto':
      return hasCuda
        ? { providers: ['cuda', 'cpu'], reason: 'CUDA provider library found beside the onnxruntime-node binding' }
        : {
            providers: ['cpu'],
            reason:
              'no CUDA provider library beside the onnxruntime-node binding (GPU install: npm install-scripts approve onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci)',
          };
  }
}
