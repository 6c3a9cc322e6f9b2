/**
 * The CUDA route's placing step (src/gpu/cuda-files.ts, scripts/gpu-cuda.ts) on a folder shaped
 * like the npm package that ships ORT 1.29's CUDA provider: the libraries here are empty stand-ins
 * (the real ones are 230 MB and need a GPU), so the checks that need real ones use ORT's own core.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CUDA_PROVIDER_FILES, findProviderFiles, installedOrtVersion, missingLibraries, placeProviderFiles, versionProblem } from '../src/gpu/cuda-files.ts';
import { bindingDir } from '../src/gpu/providers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A package folder: bin/napi-v6/linux/x64/ with the three providers and the core of `version`. */
function fakePackage(version: string, providers: readonly string[] = CUDA_PROVIDER_FILES): string {
  const dir = mkdtempSync(join(tmpdir(), 'fh-cuda-'));
  dirs.push(dir);
  const bin = join(dir, 'package', 'bin', 'napi-v6', 'linux', 'x64');
  mkdirSync(bin, { recursive: true });
  for (const name of [...providers, `libonnxruntime.so.${version}`]) writeFileSync(join(bin, name), '');
  return dir;
}

function gpuCuda(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gpu-cuda.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
}

describe('placing the CUDA provider libraries', () => {
  it('finds the three libraries and the ORT version they were built for', () => {
    const found = findProviderFiles(fakePackage('1.29.0'));
    expect(found.files.map((f) => f.split('/').at(-1))).toEqual([...CUDA_PROVIDER_FILES]);
    expect(found.ortVersion).toBe('1.29.0');
    expect(() => findProviderFiles(fakePackage('1.29.0', CUDA_PROVIDER_FILES.slice(0, 2)))).toThrow(/holds no libonnxruntime_providers_tensorrt\.so/);
  });

  it('refuses a provider built for another ORT core, with the pin to run first', () => {
    expect(versionProblem('1.30.0', '1.30.0')).toBeUndefined();
    expect(versionProblem('1.29.0', '1.30.0')).toMatch(/built for onnxruntime 1\.29\.0.*npm install --save-exact onnxruntime-node@1\.29\.0/);
    expect(versionProblem(undefined, '1.30.0')).toMatch(/--ort-version/);
    const run = gpuCuda('--from', fakePackage('1.29.0'));
    expect(run.status).toBe(2);
    expect(run.stdout).toMatch(/^gpu:cuda: the libraries were built for onnxruntime 1\.29\.0, and onnxruntime-node 1\.30\.\d+ is installed: pin it first/);
  });

  it('with the matching version it places them (dry run here: node_modules stays as npm ci left it)', () => {
    const run = gpuCuda('--from', fakePackage(installedOrtVersion()), '--dry-run');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`would copy`);
    expect(run.stdout).toContain(bindingDir()!);
    const target = mkdtempSync(join(tmpdir(), 'fh-binding-'));
    dirs.push(target);
    placeProviderFiles(findProviderFiles(fakePackage('1.30.0')).files, target);
    expect(readdirSync(target).sort()).toEqual([...CUDA_PROVIDER_FILES].sort());
  });

  it("says which shared libraries the loader misses (none for ORT's own core; an unreadable file is named)", () => {
    expect(missingLibraries(join(bindingDir()!, 'libonnxruntime.so.1'))).toEqual([]);
    const empty = join(fakePackage('1.30.0'), 'package', 'bin', 'napi-v6', 'linux', 'x64', CUDA_PROVIDER_FILES[0]);
    expect(missingLibraries(empty)[0]).toMatch(/ldd could not read libonnxruntime_providers_cuda\.so/);
  });
});
