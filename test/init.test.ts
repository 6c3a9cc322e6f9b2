/**
 * `framehost init DIR`: the files it writes, its name, and the folders it refuses (exit 2); its
 * tsconfig type-checks the model against framehost's types (a wrong type in a handler fails).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, runRaw, tempDirs } from './helpers/cli.ts';

const dirs = tempDirs();
afterEach(() => dirs.removeAll());

describe('framehost init', () => {
  it('writes a project whose model.onnx runs: package.json, tsconfig.json, model.ts, README, .npmrc, .gitignore', { timeout: 30_000 }, async () => {
    const dir = join(dirs.make('init'), 'My World!');
    const r = await runRaw(['init', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^created .*: package\.json, model\.ts, model\.onnx, tsconfig\.json, README\.md, \.npmrc, \.gitignore$/m);
    expect(r.stdout).toContain('npx framehost serve --model ./model.ts');
    expect(readdirSync(dir).sort()).toEqual(['.gitignore', '.npmrc', 'README.md', 'model.onnx', 'model.ts', 'package.json', 'tsconfig.json']);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: 'my-world',
      private: true,
      type: 'module',
      dependencies: { framehost: '^0.1.0', 'onnxruntime-node': expect.stringMatching(/^\^1\./) as string },
      allowScripts: { 'onnxruntime-node': false },
      scripts: { start: 'exec framehost serve --model ./model.ts', check: 'tsc && exec framehost check ./model.ts' },
      devDependencies: { typescript: expect.any(String) as string, '@types/node': expect.any(String) as string },
    });
    expect(readFileSync(join(dir, '.npmrc'), 'utf8')).toMatch(/^onnxruntime-node-install=skip$/m);
    expect(readFileSync(join(dir, 'model.ts'), 'utf8')).toContain("name: 'my-world'");
    expect(readFileSync(join(dir, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(13);

    // The graph: time and size in, a 256×256 RGBA picture out that moves with time.
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const at = async (time: number) =>
      (await session.run({ time: new ort.Tensor('float32', [time], [1]), size: new ort.Tensor('float32', [2], [1]) })).rgba!;
    const [a, b] = [await at(0), await at(0.25)];
    expect(a.type).toBe('uint8');
    expect(a.dims).toEqual([256, 256, 4]);
    const da = a.data as Uint8Array;
    const db = b.data as Uint8Array;
    expect(da[3]).toBe(255);
    expect(new Set(da).size).toBeGreaterThan(100);
    expect(da.some((v, i) => v !== db[i])).toBe(true);
  });

  it('refuses a folder that is not empty (unless --force), a file, and a missing DIR, with exit 2', { timeout: 30_000 }, async () => {
    const dir = dirs.make('init');
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    const full = await runRaw(['init', dir]);
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(/^framehost: init: .* is not empty: choose a new folder, or --force to write into it$/m);
    writeFileSync(join(dir, 'framehost-0.1.0.tgz'), ''); // stands for npm pack's tarball, beside the project
    const forced = await runRaw(['init', join(dir, 'sub'), '--name', 'forced', '--framehost', join(dir, 'framehost-0.1.0.tgz')]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'sub', 'package.json'), 'utf8'))).toMatchObject({ name: 'forced', dependencies: { framehost: 'file:../framehost-0.1.0.tgz' } });
    const into = await runRaw(['init', dir, '--force']);
    expect(into.code, into.stderr).toBe(0);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
    const file = await runRaw(['init', join(dir, 'keep.txt')]);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('exists and is not a folder');
    const none = await runRaw(['init']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^framehost: init: which folder\? framehost init my-model$/m);
    mkdirSync(join(dir, 'empty'));
    expect((await runRaw(['init', join(dir, 'empty')])).code).toBe(0);
  });

  it('type-checks the model: the starter passes tsc, a wrong type in a handler fails it', { timeout: 120_000 }, async () => {
    const dir = join(dirs.make('init'), 'typed');
    expect((await runRaw(['init', dir])).code).toBe(0);
    // What npm install would give it, from this checkout: framehost (its source, through the
    // package's framehost-source condition, as the repository's own tsconfig does), ORT, the types.
    mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(ROOT, join(dir, 'node_modules', 'framehost'));
    symlinkSync(join(ROOT, 'node_modules', 'onnxruntime-node'), join(dir, 'node_modules', 'onnxruntime-node'));
    symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
    writeFileSync(join(dir, 'tsconfig.source.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { customConditions: ['framehost-source'], allowImportingTsExtensions: true, esModuleInterop: true, resolveJsonModule: true } }));
    const tsc = (): Promise<{ code: number; out: string }> =>
      promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.source.json')], { cwd: dir }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
      );
    const ok = await tsc();
    expect(ok, ok.out).toEqual({ code: 0, out: '' });
    const model = readFileSync(join(dir, 'model.ts'), 'utf8');
    writeFileSync(join(dir, 'model.ts'), model.replace('state.size = size;', "state.size = 'huge';"));
    const wrong = await tsc();
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/^model\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'\./m);
  });
});
