/**
 * `npm run gpu:cuda -- --from <folder | .tgz> [--ort-version X.Y.Z] [--dry-run]`
 *
 * Places ONNX Runtime's CUDA provider libraries (from an unpacked npm package such as
 * com.github.asus4.onnxruntime.linux-x64-gpu, its .tgz, or any folder holding them) beside
 * onnxruntime-node's binding, after checking that the installed onnxruntime-node is the version
 * they were built for; then says what the dynamic loader still misses and whether a CUDA session
 * starts. Exit codes: 0 a CUDA session started; 1 usage or files missing; 2 ORT version to pin
 * first; 3 placed, but CUDA does not start here (the line says why: a missing CUDA library, no GPU).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { bindingDir } from '../src/gpu/providers.ts';
import { findProviderFiles, installedOrtVersion, missingLibraries, placeProviderFiles, versionProblem } from '../src/gpu/cuda-files.ts';
import { GraphBuilder } from '../src/models/graph-builder.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const say = (line: string): void => void process.stdout.write(`gpu:cuda: ${line}\n`);

function unpacked(from: string): string {
  if (!/\.(tgz|tar\.gz)$/.test(from)) return from;
  const dir = mkdtempSync(join(tmpdir(), 'framehost-cuda-'));
  execFileSync('tar', ['-xzf', from, '-C', dir]);
  return dir;
}

async function cudaStarts(): Promise<string | undefined> {
  const g = new GraphBuilder('cuda_check');
  g.op1('Relu', [g.input('x', 'float', [4])], {}, 'y');
  g.output('y', 'float', [4]);
  try {
    const s = await ort.InferenceSession.create(g.encode(), { executionProviders: ['cuda'] });
    await s.release();
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0];
  }
}

async function main(): Promise<number> {
  const from = flag('--from');
  const target = bindingDir();
  if (!from) return say('usage: npm run gpu:cuda -- --from <folder | .tgz> [--ort-version X.Y.Z] [--dry-run]'), 1;
  if (!target) return say('onnxruntime-node is not installed (npm ci first)'), 1;
  let found;
  try {
    found = findProviderFiles(unpacked(from));
  } catch (err) {
    return say((err as Error).message), 1;
  }
  const built = flag('--ort-version') ?? found.ortVersion;
  const problem = versionProblem(built, installedOrtVersion());
  if (problem) return say(problem), 2;
  if (args.includes('--dry-run')) return say(`would copy ${found.files.join(', ')} to ${target}`), 0;
  const placed = placeProviderFiles(found.files, target);
  say(`placed ${placed.length} libraries in ${target} (onnxruntime ${built})`);
  const missing = [...new Set(placed.flatMap((p) => missingLibraries(p, { ...process.env, LD_LIBRARY_PATH: [target, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') })))];
  if (missing.length) say(`the loader misses ${missing.join(', ')}: install CUDA's libraries (CUDA 13 for ORT 1.29's package) or add their folder to LD_LIBRARY_PATH`);
  const failure = await cudaStarts();
  if (failure) return say(`a CUDA session does not start here: ${failure}`), 3;
  say('a CUDA session started: serve with --provider cuda (or auto)');
  return 0;
}

process.exit(await main());
