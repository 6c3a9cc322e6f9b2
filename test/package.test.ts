/**
 * framehost as a published package: `npm run build` emits plain JavaScript, and a plain Node
 * program (no tsx, no TypeScript) imports `framehost` and `framehost/client` by name, serves a
 * session over Socket.IO and bundles the page from the built files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

const PROGRAM = `
import { createRuntime, listen } from 'framehost';
import { FramehostClient } from 'framehost/client';
const rt = await createRuntime({ modelOptions: { size: 32, fps: 50 } });
const model = await rt.ready();
const server = await listen(rt, { port: 0 });
const client = await FramehostClient.connect(server.url, { reconnection: false });
let frames = 0;
client.onFrame(() => frames++);
const ended = new Promise((resolve) => client.on('session:ended', resolve));
await client.start();
await new Promise((r) => setTimeout(r, 400));
await client.stop();
const end = await ended;
const page = await (await fetch(server.url + '/page.js')).text();
client.close();
await server.close();
await rt.shutdown();
console.log(JSON.stringify({ model: model.name, frames, reason: end.reason, page: page.length }));
`;

describe('the built package', () => {
  it('runs from plain JavaScript, imported by its package name', { timeout: 120_000 }, () => {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
    const file = `${root}package-check.tmp.mjs`;
    writeFileSync(file, PROGRAM);
    try {
      const run = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn' } });
      expect(run.status, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { model: string; frames: number; reason: string; page: number };
      expect(result.model).toBe('gray-scott');
      expect(result.frames).toBeGreaterThan(3);
      expect(result.reason).toBe('stopped');
      expect(result.page).toBeGreaterThan(10_000);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
