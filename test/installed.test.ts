/**
 * framehost as a user gets it: `npm pack` of a copy of this checkout (its tracked and untracked,
 * not ignored files: what a fresh clone has), installed into an empty folder outside the
 * repository with the npm registry only (`--prefer-offline`; onnxruntime-node's CUDA download
 * must be skipped by the project's own settings, so no npm_* or ONNXRUNTIME_* variable of this
 * run reaches the installs). One install serves every case:
 * - `framehost init`, `npm install` of the scaffold, `framehost check`, and `framehost serve`
 *   with a real Socket.IO client receiving its frames;
 * - a plain Node program (no tsx) embedding `.ts`, `.mts`, `.js` and `.mjs` models from folders
 *   with and without "type": "module", each importing `framehost` by name, one of them loading
 *   its ONNX file by a path relative to itself from another working directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramehostClient } from '../src/client/client.ts';
import { childPool, ROOT } from './helpers/child.ts';

const children = childPool();
let base = '';
let app = '';
let tarball = '';

/** The environment of a user's shell: none of this test run's npm settings. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|ONNXRUNTIME_|FRAMEHOST_)/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund'], { cwd, env: userEnv(), encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'framehost-installed-'));
  // A copy of the checkout as a fresh clone has it (no dist/), with this checkout's node_modules for the build.
  const clone = join(base, 'clone');
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(clone, f)), { recursive: true });
    cpSync(join(ROOT, f), join(clone, f));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
  npm(['pack', '--pack-destination', base], clone);
  tarball = join(base, readdirSync(base).find((f) => f.endsWith('.tgz'))!);

  // The user's project: what the README's install section says to write.
  app = join(base, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, allowScripts: { 'onnxruntime-node': false } }));
  writeFileSync(join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
  npm(['install', tarball], app);
}, 180_000);

afterAll(async () => {
  await children.killAll();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('the packed package, installed', () => {
  it('init, npm install, check and serve a new model project; a Socket.IO client receives its frames', { timeout: 150_000 }, async () => {
    const init = spawnSync(join(app, 'node_modules', '.bin', 'framehost'), ['init', 'world', '--framehost', tarball], { cwd: app, env: userEnv(), encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    const project = join(app, 'world');
    expect(readdirSync(project).sort()).toEqual(['.gitignore', '.npmrc', 'README.md', 'model.onnx', 'model.ts', 'package.json', 'tsconfig.json']);
    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string>; allowScripts: Record<string, boolean> };
    expect(manifest.name).toBe('world');
    // framehost is not on the registry yet: --framehost wrote the tarball, relative to the project.
    expect(manifest.dependencies.framehost).toBe(`file:../../${basename(tarball)}`);
    expect(manifest.allowScripts).toEqual({ 'onnxruntime-node': false });
    expect(readFileSync(join(project, 'README.md'), 'utf8').trim().split('\n').length).toBeLessThanOrEqual(12);

    // The scaffold's own install: only its package.json and .npmrc keep onnxruntime-node's download away.
    npm(['install'], project);
    const bin = join(project, 'node_modules', '.bin', 'framehost');

    // The scaffold's own check: tsc with its tsconfig, then framehost check (npm run check).
    const own = spawnSync('npm', ['run', 'check'], { cwd: project, env: userEnv(), encoding: 'utf8', timeout: 90_000 });
    expect(own.status, `${own.stdout}\n${own.stderr}`).toBe(0);
    expect(own.stdout).toMatch(/^passed: 5 passed, 0 failed$/m);

    // The installed declarations type-check the scaffold under a stricter user tsconfig (no
    // skipLibCheck); a misspelt argument is an error on its own line.
    const tsc = (): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [] }, include: ['model.ts'] }),
    );
    const typed = tsc();
    expect(typed.status, String(typed.stdout)).toBe(0);
    const source = readFileSync(join(project, 'model.ts'), 'utf8');
    writeFileSync(join(project, 'model.ts'), source.replace('({ speed, size }, { state })', '({ speed, size, colour }, { state })'));
    const mistake = tsc();
    const line = source.split('\n').findIndex((l) => l.includes('({ speed, size }, { state })')) + 1;
    expect(String(mistake.stdout)).toMatch(new RegExp(`^model\\.ts\\(${line},\\d+\\): error TS2339: Property 'colour' does not exist`, 'm'));
    writeFileSync(join(project, 'model.ts'), source);

    const check = spawnSync(bin, ['check', './model.ts'], { cwd: project, env: userEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(check.status, `${check.stdout}\n${check.stderr}`).toBe(0);
    expect(check.stdout).toMatch(/^ {2}ok {4}load {15}world 0\.1\.0 on cpu/m);
    expect(check.stdout).toMatch(/^ {2}ok {4}command waves /m);
    expect(check.stdout).toMatch(/^passed: 5 passed, 0 failed$/m);

    const serve = children.start([bin, 'serve', '--model', './model.ts', '--port', '0'], { cwd: project, env: userEnv({ FRAMEHOST_LOG_LEVEL: 'warn' }) });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = /open (http:\/\/\S+) in a browser/.exec(serve.stderr);
        if (m) resolve(m[1]!);
        if (!serve.running) reject(new Error(`serve exited:\n${serve.stderr}`));
      }, 50);
      setTimeout(() => (clearInterval(timer), reject(new Error(`no URL:\n${serve.stderr}`))), 30_000).unref();
    });
    const started = Date.now();
    while ((await fetch(`${url}/ready`)).status !== 200 && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 100));
    const client = await FramehostClient.connect(url, { reconnection: false });
    try {
      const frames: { width: number; height: number; bytes: number }[] = [];
      client.onFrame(({ meta, data }) => frames.push({ width: meta.width, height: meta.height, bytes: data.byteLength }));
      await client.start();
      await client.command('waves', { speed: 3, size: 4 });
      while (frames.length < 5 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
      expect(frames.length).toBeGreaterThanOrEqual(5);
      expect(frames[0]).toEqual({ width: 256, height: 256, bytes: 256 * 256 * 4 });
      await client.stop();
    } finally {
      client.close();
    }
    serve.proc.kill('SIGTERM');
    expect(await serve.exitWithin(20_000)).toEqual({ code: 0, signal: null });
  });

  it('embeds .ts, .mts, .cts, .js and .mjs models, in folders with and without "type": "module", from plain Node', { timeout: 120_000 }, async () => {
    const body = (ext: string) => `import { defineModel, t } from 'framehost';
export default defineModel({
  name: 'tiny-${ext}', version: '1.0.0',
  load: async () => ({ side: 8 }),
  createSessionState: () => ({ level: 7 }),
  commands: { level: { args: { value: t.int({ min: 0, max: 255 }) }, handler: ({ value }, { state }) => { state.level = value; } } },
  async loop(ctx) {
    while (!ctx.shouldStop()) {
      ctx.emit({ data: new Uint8Array(8 * 8 * 4).fill(ctx.state.level), width: 8, height: 8, format: 'rgba' });
      await ctx.sleep(10);
    }
  },
});
`;
    const models: string[] = [];
    for (const [folder, type] of [['plain', undefined], ['esm', 'module']] as const) {
      mkdirSync(join(app, 'models', folder), { recursive: true });
      if (type) writeFileSync(join(app, 'models', folder, 'package.json'), JSON.stringify({ type }));
      for (const ext of ['ts', 'mts', 'cts', 'js', 'mjs']) {
        writeFileSync(join(app, 'models', folder, `model.${ext}`), body(`${folder}-${ext}`));
        models.push(`./models/${folder}/model.${ext}`);
      }
    }
    // The init scaffold from another working directory: its createSession('./model.onnx') is relative to model.ts.
    const init = spawnSync(join(app, 'node_modules', '.bin', 'framehost'), ['init', 'scaffold'], { cwd: app, env: userEnv(), encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    models.push('./scaffold/model.ts');

    writeFileSync(
      join(app, 'embed.mjs'),
      `import { createRuntime } from 'framehost';
import { pino } from 'pino';
const results = [];
for (const model of process.argv.slice(2)) {
  try {
    const rt = await createRuntime({ model, logger: pino({ level: 'error' }) });
    const info = await rt.ready();
    const frame = new Promise((resolve) => rt.on('frame', (f) => resolve(f)));
    rt.start();
    const f = await frame;
    rt.stop();
    await rt.whenSessionOver();
    await rt.shutdown();
    results.push({ model, name: info.name, width: f.width, first: f.data[0] });
  } catch (err) {
    results.push({ model, error: String(err && err.message) });
  }
}
console.log(JSON.stringify(results));
`,
    );
    const run = spawnSync(process.execPath, ['embed.mjs', ...models], { cwd: app, env: userEnv(), encoding: 'utf8', timeout: 100_000 });
    expect(run.status, run.stderr).toBe(0);
    const results = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { model: string; name?: string; width?: number; first?: number; error?: string }[];
    const expected = models.map((model) =>
      model.startsWith('./scaffold')
        ? { model, name: 'scaffold', width: 256, first: expect.any(Number) as number }
        : { model, name: `tiny-${model.split('/')[2]}-${model.split('.').at(-1)}`, width: 8, first: 7 },
    );
    expect(results).toEqual(expected);
  });
});
