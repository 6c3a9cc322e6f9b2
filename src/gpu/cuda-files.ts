/**
 * Placing ONNX Runtime's CUDA provider libraries beside onnxruntime-node's binding, for the
 * route the npm registry alone cannot give: onnxruntime-node ships no CUDA provider (its install
 * script downloads one from outside the registry, and framehost turns install scripts off), and
 * a provider library works only with the ORT core of the version it was built for.
 *
 * The steps, each a function here (scripts/gpu-cuda.ts is the command line around them):
 * find the three libraries in a folder, learn the ORT version they were built for, refuse when
 * the installed onnxruntime-node differs (pin it first), copy them, then check what the dynamic
 * loader still misses (CUDA's own libraries: cuBLAS, cuDNN… come with the CUDA install).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';

/** onnxruntime-node's installer counts the CUDA route done when all three exist (its install script exits 0). */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'] as const;

/** Every file under `dir` (depth-first, links followed), as absolute paths. */
function walk(dir: string, depth = 0): string[] {
  if (depth > 8) return [];
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const s = statSync(path, { throwIfNoEntry: false });
    if (s?.isDirectory()) found.push(...walk(path, depth + 1));
    else if (s?.isFile()) found.push(path);
  }
  return found;
}

export interface ProviderFiles {
  /** The three libraries' paths, in CUDA_PROVIDER_FILES order. */
  readonly files: readonly string[];
  /** The ORT version they were built for, when the folder tells (a libonnxruntime.so.X.Y.Z beside them, or a package.json naming onnxruntime). */
  readonly ortVersion?: string;
}

/** Finds the provider libraries in `dir` (an unpacked npm package or a plain folder). */
export function findProviderFiles(dir: string): ProviderFiles {
  const all = walk(dir);
  const files = CUDA_PROVIDER_FILES.map((name) => all.find((p) => basename(p) === name));
  const missing = CUDA_PROVIDER_FILES.filter((_, i) => !files[i]);
  if (missing.length) throw new Error(`${dir} holds no ${missing.join(', ')}`);
  const core = all.map((p) => /^libonnxruntime\.so\.(\d+\.\d+\.\d+)$/.exec(basename(p))?.[1]).find(Boolean);
  return { files: files as string[], ...(core ? { ortVersion: core } : {}) };
}

/** The version of the onnxruntime-node this project resolves. */
export function installedOrtVersion(): string {
  const require = createRequire(import.meta.url);
  return (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
}

/** Why placing must wait, or undefined: a provider built for another ORT core does not load (or worse, loads). */
export function versionProblem(built: string | undefined, installed: string): string | undefined {
  if (!built) return 'the ORT version the libraries were built for is unknown: pass --ort-version X.Y.Z';
  if (built === installed) return undefined;
  return `the libraries were built for onnxruntime ${built}, and onnxruntime-node ${installed} is installed: pin it first (npm install --save-exact onnxruntime-node@${built}; offline: npm install --save-exact ./onnxruntime-common-${built}.tgz ./onnxruntime-node-${built}.tgz), then run this again`;
}

/** Copies the libraries into the binding folder; returns the placed paths. */
export function placeProviderFiles(files: readonly string[], bindingDir: string): string[] {
  return files.map((file) => {
    const to = join(bindingDir, basename(file));
    copyFileSync(file, to);
    return to;
  });
}

/** The shared libraries the dynamic loader cannot find for `lib` (ldd's "not found" lines). */
export function missingLibraries(lib: string, env: NodeJS.ProcessEnv = process.env): string[] {
  let text: string;
  try {
    text = execFileSync('ldd', [lib], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    text = e.stdout || e.stderr || e.message;
    if (!/not found/.test(text)) return [`(ldd could not read ${basename(lib)}: ${text.trim().split('\n')[0]})`];
  }
  return text
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s+/)[0]!);
}
