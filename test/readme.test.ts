/**
 * The code of the README and of the guides in docs/, taken from the files themselves: the model
 * examples run with `framehost check` from this checkout (the bin from the sources: `import
 * 'framehost'` must work in a fresh clone, with no build step), the token-minting backend as a
 * user runs it. The five-minute model is also what `framehost init` writes, word for word.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder, loadTokenKeys, TokenVerifier, type TokenKeySet } from '../src/index.ts';
import { FramehostClient } from '../src/client/client.ts';
import { startServer } from './helpers/server.ts';
import { childPool, ROOT } from './helpers/child.ts';
import { BIN } from './helpers/cli.ts';

/** The README, or a guide under docs/ (`docs/writing-a-model.md`). */
const read = (file: string): string => `\n${readFileSync(join(ROOT, file), 'utf8')}`;
// Inside the repository and with no package.json of its own, so `framehost` is this package.
const WORK = join(ROOT, 'test-output', 'readme');
const children = childPool();

afterAll(async () => {
  await children.killAll();
  rmSync(WORK, { recursive: true, force: true });
});

/** The first ```ts block after the heading in the file. */
function exampleAfter(file: string, heading: string): string {
  const text = read(file);
  const at = text.indexOf(`\n${heading}\n`);
  expect(at, `${file}: heading ${heading}`).toBeGreaterThanOrEqual(0);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  expect(block).not.toBeNull();
  return block![1]!;
}

async function check(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const child = children.start([BIN, 'check', ...args], { cwd, env: { ...process.env, FRAMEHOST_LOG_LEVEL: '' } });
  const exit = await child.exitWithin(60_000);
  return { code: exit.code, out: `${child.stdout}\n${child.stderr}` };
}

describe('the README and the guides', () => {
  it('README, "Your own model in five minutes": the model framehost init writes, and it passes check', { timeout: 60_000 }, async () => {
    const example = exampleAfter('README.md', '## Your own model in five minutes');
    expect(example).toBe(readFileSync(join(ROOT, 'templates', 'model', 'model.ts'), 'utf8'));
    const dir = join(WORK, 'five-minutes');
    rmSync(dir, { recursive: true, force: true });
    const init = children.start([BIN, 'init', dir]);
    expect((await init.exitWithin(20_000)).code, init.stderr).toBe(0);
    rmSync(join(dir, 'package.json')); // here: resolve framehost to this checkout, not to an install
    writeFileSync(join(dir, 'model.ts'), example);
    const r = await check(['./model.ts'], dir);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^ {2}ok {4}command waves /m);
    expect(r.out).toMatch(/^passed: 5 passed, 0 failed$/m);
    // The sample output in the README and in docs/writing-a-model.md: the same steps, in the same order, and summary as this run.
    const steps = (text: string): string[] => [...text.matchAll(/^ {2}(ok|FAIL) +(\S+(?: \S+)?) {2,}/gm), ...text.matchAll(/^passed: .*$/gm)].map((m) => (m[1] ? `${m[1]} ${m[2]}` : m[0]));
    expect(steps(r.out)).toHaveLength(6);
    for (const [file, heading] of [['README.md', '```\nframehost check ./model.ts\n'], ['docs/writing-a-model.md', '```\nframehost check ./model.ts\n']] as const) {
      const text = read(file);
      const at = text.indexOf(heading);
      expect(at, `${file}: the sample of framehost check`).toBeGreaterThanOrEqual(0);
      expect(steps(text.slice(at, text.indexOf('```', at + 3))), file).toEqual(steps(r.out));
    }
  });

  it('docs/writing-a-model.md: the reference example runs and passes check, its ONNX file found beside it from another folder', { timeout: 60_000 }, async () => {
    const dir = join(WORK, 'reference');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'my-world.ts'), exampleAfter('docs/writing-a-model.md', '# Writing a model'));
    // The graph it expects: latent [1, H, W] float in, rgba [H, W, 4] uint8 out (grey levels).
    const g = new GraphBuilder('readme');
    const latent = g.input('latent', 'float', [1, 'H', 'W']);
    const hw1 = g.op1('Transpose', [latent], { perm: [1, 2, 0] });
    const scaled = g.op1('Mul', [hw1, g.constFloat('c255', [], [255])]);
    const four = g.op1('Concat', [scaled, scaled, scaled, g.op1('Add', [g.op1('Mul', [scaled, g.constFloat('zero', [], [0])]), g.constFloat('opaque', [], [255])])], { axis: 2 });
    g.op1('Cast', [four], { to: 2 }, 'rgba');
    g.output('rgba', 'uint8', ['H', 'W', 4]);
    writeFileSync(join(dir, 'my-world.onnx'), g.encode(17));

    const r = await check([join('test-output', 'readme', 'reference', 'my-world.ts'), '--model-option', 'size=32'], ROOT);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^ {2}ok {4}load {15}my-world 1\.0\.0 on cpu/m);
    expect(r.out).toMatch(/^ {2}ok {4}frames {13}32×32 rgba/m);
    expect(r.out).toMatch(/^ {2}ok {4}command prompt /m);
    expect(r.out).toMatch(/^ {2}ok {4}command move /m);
  });

  it('docs/production.md, "Minting tokens in your backend": the example serves tokens to its logged-in users, and a framehost with the same key admits them', { timeout: 60_000 }, async () => {
    const dir = join(WORK, 'backend');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'backend.ts'), exampleAfter('docs/production.md', '### Minting tokens in your backend'));
    const key = 'readme-example-key-0123456789-abcdefghij';
    // As a user runs a TypeScript file; `framehost` resolves to this checkout's sources.
    const backend = children.start(['--conditions=framehost-source', '--import', 'tsx', 'backend.ts'], { cwd: dir, env: { ...process.env, FRAMEHOST_TOKEN_KEY: key, PORT: '0' } });
    const url = (await backend.waitFor('stdout', /^tokens on (http:\/\/127\.0\.0\.1:\d+\/framehost-token)$/m, 30_000))[1]!;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: { 'x-user-id': 'user-42' } });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const verified = await new TokenVerifier((await loadTokenKeys({ key })) as TokenKeySet).verify(token);
    expect(verified).toMatchObject({ ok: true, claims: { sub: 'user-42', role: 'player' } });
    const h = await startServer({}, { tokens: new TokenVerifier((await loadTokenKeys({ key })) as TokenKeySet) });
    try {
      await h.rt.ready();
      const player = await h.client({ authToken: token });
      const started = await player.start({ encoding: 'raw' });
      expect(started.sessionId).toBe(h.rt.status().session?.id);
      await expect(FramehostClient.connect(h.url, { reconnection: false })).rejects.toMatchObject({ code: 'unauthorized' });
    } finally {
      await h.close();
    }
  });
});
