/**
 * `framehost serve`, end to end: the real launcher (bin/framehost.mjs) in a child process on a
 * port of its choosing, driven over HTTP and Socket.IO, stopped with signals.
 */
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FramehostClient } from '../src/client/client.ts';
import { childPool, type Child } from './helpers/child.ts';
import { startRedis } from './helpers/redis.ts';
import { SCRIPTED_MODEL, until } from './helpers/runtime.ts';
import { nextEvent, sleep } from './helpers/server.ts';

const BIN = 'bin/framehost.mjs';
const SLOW_IMPORT_MODEL = fileURLToPath(new URL('./fixtures/models/slow-import.ts', import.meta.url));
// Each test starts real `framehost` processes (tsx, a worker, ONNX Runtime): generous on a busy
// machine (a load average of 18 on 2 cores took a process 20 s to print its first line).
const TEST_TIMEOUT_MS = 120_000;
/** Waiting for one process's line or exit: an upper bound, never a pause. */
const WAIT_MS = 45_000;
const children = childPool();
const clients: FramehostClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await children.killAll();
});

/** The environment without FRAMEHOST_* settings, so that only the flags count. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FRAMEHOST_')) env[k] = v;
  return { ...env, ...extra };
}

interface Health {
  readonly status: string;
  readonly state: string;
}

async function getHealth(url: string): Promise<Health | undefined> {
  try {
    const res = await fetch(`${url}/health`);
    return (await res.json()) as Health;
  } catch {
    return undefined;
  }
}

/** Poll /health until `check` holds. */
async function healthUntil(url: string, what: string, check: (h: Health) => boolean, ms = 20_000): Promise<Health> {
  const deadline = Date.now() + ms;
  let last: Health | undefined;
  while (Date.now() < deadline) {
    last = await getHealth(url);
    if (last && check(last)) return last;
    await sleep(50);
  }
  throw new Error(`/health never showed ${what} within ${ms} ms; last: ${JSON.stringify(last)}`);
}

/** Start `framehost serve` on port 0; resolve with the child and the URL it printed. */
async function serve(args: readonly string[]): Promise<{ child: Child; url: string }> {
  const child = children.start([BIN, 'serve', '--port', '0', ...args], { env: cleanEnv() });
  const m = await child.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m, WAIT_MS);
  expect(Number(m[2])).toBeGreaterThan(0);
  return { child, url: m[1]! };
}

async function connect(url: string): Promise<FramehostClient> {
  const c = await FramehostClient.connect(url, { reconnection: false });
  clients.push(c);
  return c;
}

/** pino's JSON lines on stdout (anything else is ignored). */
function logLines(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a partial line */
    }
  }
  return out;
}

describe('framehost serve', () => {
  it('serves a session and, on SIGTERM, ends it with shutdown and exits 0 with a complete log', async () => {
    const { child, url } = await serve(['--model-option', 'size=32', '--model-option', 'fps=30', '--orphan-timeout', '1000']);
    const health = await healthUntil(url, 'status ok', (h) => h.status === 'ok');
    expect(health.state).toBe('idle');

    const client = await connect(url);
    const frames: number[] = [];
    client.onFrame((f) => frames.push(f.meta.seq));
    const { sessionId } = await client.start();
    await until('a few frames', () => frames.length >= 3);
    const running = await healthUntil(url, 'state running', (h) => h.state === 'running');
    expect(running.status).toBe('ok');

    const ended = nextEvent<{ sessionId: string; reason: string }>(client, 'session:ended', 10_000);
    const sent = Date.now();
    child.signal('SIGTERM');
    expect(await ended).toMatchObject({ sessionId, reason: 'shutdown' });
    const exit = await child.exitWithin(10_000);
    expect(exit, child.stderr).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(10_000);

    const lines = logLines(child.stdout);
    const messages = lines.map((l) => String(l.msg));
    expect(messages).toContain('shutdown complete');
    expect(lines.find((l) => String(l.msg).startsWith('shutting down'))).toMatchObject({ signal: 'SIGTERM' });
    expect(lines.find((l) => l.msg === 'session ended')).toMatchObject({ sessionId, reason: 'shutdown' });
    // The shutdown line is the last thing logged (the log was flushed, nothing after it).
    expect(messages.at(-1), child.stdout.split('\n').slice(-8).join('\n')).toBe('shutdown complete');
    expect(lines.find((l) => String(l.msg).startsWith('ready:'))).toBeDefined();
  }, TEST_TIMEOUT_MS);

  it('prints its own usage for --help (exit 0) and refuses an unknown flag with a hint (exit 2)', async () => {
    const help = children.start([BIN, 'serve', '--help'], { env: cleanEnv() });
    const bad = children.start([BIN, 'serve', '--prot', '3001'], { env: cleanEnv() });
    const [helpExit, badExit] = await Promise.all([help.exitWithin(WAIT_MS), bad.exitWithin(WAIT_MS)]);

    expect(helpExit, help.stderr).toEqual({ code: 0, signal: null });
    expect(help.stdout).toMatch(/^Usage: framehost serve \[--model PATH\] \[--host 127\.0\.0\.1\] \[--port 3000\] \[--inspect\]/);
    expect(help.stdout).toMatch(/--inspect\s/);
    expect(help.stdout).toContain('--inspect-url WS_URL');
    expect(help.stdout).toContain('--stop-deadline MS');
    expect(help.stdout).toMatch(/Built-in models \(--model NAME\):\n\s+gray-scott\s.*\n\s+video-filter\s/);
    expect(help.stdout).not.toContain('--out DIR'); // headless's options are headless's help

    expect(badExit).toEqual({ code: 2, signal: null });
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^framehost: serve: unknown option --prot: did you mean --port\?\nUsage: framehost serve .*\(framehost serve --help for every option\)\n$/);
  }, TEST_TIMEOUT_MS);

  it('says in one line, exit 1, that the port is in use and which one is free', async () => {
    const first = await serve([]);
    const port = Number(new URL(first.url).port);
    const second = children.start([BIN, 'serve', '--port', String(port), '--model', SCRIPTED_MODEL], { env: cleanEnv() });
    expect(await second.exitWithin(WAIT_MS)).toEqual({ code: 1, signal: null });
    expect(second.stderr).toMatch(new RegExp(`^framehost: serve: port ${port} is in use on 127\\.0\\.0\\.1: try --port (\\d+)$`, 'm'));
    expect(second.stderr).not.toMatch(/\n\s+at /);
    // Checked before the model loads: nothing was logged, nothing else said.
    expect(second.stdout).toBe('');
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
  }, TEST_TIMEOUT_MS);

  it('exits 1 with one line when the model cannot load (an invalid model option), no stack', async () => {
    const child = children.start([BIN, 'serve', '--port', '0', '--model-option', 'size=99999'], { env: cleanEnv() });
    expect(await child.exitWithin(30_000), child.stderr).toEqual({ code: 1, signal: null });
    expect(child.stderr).toMatch(/^framehost: serve: the model failed to load; the runtime cannot serve sessions: model option size must be an integer in 16\.\.1024, got 99999$/m);
    expect(child.stderr.trim().split('\n').filter((l) => !l.startsWith('framehost: open '))).toHaveLength(1);
    expect(child.stderr).not.toMatch(/\n\s+at /);
    expect(child.stdout).not.toContain('"stack"');
    const lines = logLines(child.stdout);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(['model load failed', 'the model failed to load; exiting']);
    expect(lines.at(-1)?.msg).toBe('shutdown complete');
  }, TEST_TIMEOUT_MS);

  it('on SIGTERM during the model load, shuts down at info level (no error, no stack) and exits 0', async () => {
    const { child } = await serve(['--model', SCRIPTED_MODEL, '--model-option', 'mode=load-hangs']);
    // The model never loads (load-hangs): the signal comes during the load.
    child.signal('SIGTERM');
    expect(await child.exitWithin(WAIT_MS), child.stderr).toEqual({ code: 0, signal: null });
    const lines = logLines(child.stdout);
    expect(lines.filter((l) => Number(l.level) >= 50), child.stdout).toEqual([]);
    expect(lines.find((l) => l.msg === 'shutting down during load: the model was not loaded')).toMatchObject({ level: 30 });
    expect(lines.at(-1)?.msg).toBe('shutdown complete');
    expect(child.stderr).not.toContain('failed to load');
  }, TEST_TIMEOUT_MS);

  it('on SIGTERM while the model module is still being imported (before the runtime exists), drains and exits 0', async () => {
    const child = children.start([BIN, 'serve', '--port', '0', '--model', SLOW_IMPORT_MODEL], { env: cleanEnv() });
    await child.waitFor('stderr', /^fixture: slow import began$/m, WAIT_MS);
    child.signal('SIGTERM');
    expect(await child.exitWithin(WAIT_MS), child.stderr).toEqual({ code: 0, signal: null });
    const lines = logLines(child.stdout);
    expect(lines.filter((l) => Number(l.level) >= 50), child.stdout).toEqual([]);
    expect(lines.find((l) => String(l.msg).startsWith('shutting down'))).toMatchObject({ signal: 'SIGTERM' });
    expect(lines.at(-1)?.msg).toBe('shutdown complete');
  }, TEST_TIMEOUT_MS);

  it('serve --fleet: on SIGTERM during the model load, drains at info level and exits 0', async () => {
    const redis = await startRedis();
    try {
      const args = ['serve', '--port', '0', '--fleet', '--redis', redis.url, '--queue', `load-${process.pid}`, '--secret', 'a-test-secret-of-some-length', '--model', SCRIPTED_MODEL, '--model-option', 'mode=load-hangs'];
      const child = children.start([BIN, ...args], { env: cleanEnv() });
      await child.waitFor('stderr', /^framehost: open http:\/\/127\.0\.0\.1:\d+ in a browser$/m, WAIT_MS);
      child.signal('SIGTERM');
      expect(await child.exitWithin(WAIT_MS), child.stderr).toEqual({ code: 0, signal: null });
      const lines = logLines(child.stdout);
      expect(lines.filter((l) => Number(l.level) >= 50), child.stdout).toEqual([]);
      expect(lines.map((l) => l.msg)).toContain('shutting down during load: the model was not loaded');
      expect(lines.map((l) => l.msg)).toContain('shutdown complete');
    } finally {
      await redis.stop();
    }
  }, TEST_TIMEOUT_MS);

  it('gateway: on SIGTERM before Redis ever answers, exits 0 with no error line', async () => {
    // A port nothing listens on: Redis never answers.
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const child = children.start([BIN, 'gateway', '--port', '0', '--redis', `redis://127.0.0.1:${closed}`], { env: cleanEnv() });
    await child.waitFor('stderr', /^framehost: gateway on http:\/\/127\.0\.0\.1:\d+$/m, WAIT_MS);
    child.signal('SIGTERM');
    expect(await child.exitWithin(WAIT_MS), child.stderr).toEqual({ code: 0, signal: null });
    const lines = logLines(child.stdout);
    expect(lines.filter((l) => Number(l.level) >= 50), child.stdout).toEqual([]);
    expect(lines.map((l) => l.msg)).toContain('gateway shutting down');
  }, TEST_TIMEOUT_MS);

  it('refuses a missing model, a misspelled built-in and a bad --inspect-url in one line, exit 2', async () => {
    const runs = [
      [['--model', '/nonexistent'], /^framehost: serve: --model \/nonexistent: no such file \(\/nonexistent\); built-ins: gray-scott, video-filter, vae-decoder\n/],
      [['--model', 'video-filtr'], /^framehost: serve: no model "video-filtr": did you mean the built-in video-filter\?\n/],
      [['--inspect-url', 'notaurl'], /^framehost: serve: --inspect-url "notaurl" is not a URL: try ws:\/\/127\.0\.0\.1:8080\n/],
      [['--inspect-url', 'http://127.0.0.1:1'], /^framehost: serve: --inspect-url needs a ws:\/\/ or wss:\/\/ URL, got http:\n/],
    ] as const;
    const children_ = runs.map(([args]) => children.start([BIN, 'serve', '--port', '0', ...args], { env: cleanEnv() }));
    const exits = await Promise.all(children_.map((c) => c.exitWithin(WAIT_MS)));
    runs.forEach(([, message], i) => {
      expect(exits[i], children_[i]!.stderr).toEqual({ code: 2, signal: null });
      expect(children_[i]!.stderr).toMatch(message);
      expect(children_[i]!.stderr).not.toMatch(/\n\s+at /);
    });
  }, TEST_TIMEOUT_MS);

  it('lists the commands for --help, suggests a command for a typo, and keeps --model out of the gateway', async () => {
    const top = children.start([BIN, '--help'], { env: cleanEnv() });
    const typo = children.start([BIN, 'serv'], { env: cleanEnv() });
    const gateway = children.start([BIN, 'gateway', '--help'], { env: cleanEnv() });
    const gatewayModel = children.start([BIN, 'gateway', '--model', 'x.ts'], { env: cleanEnv() });
    const [topExit, typoExit, gatewayExit, gatewayModelExit] = await Promise.all([top, typo, gateway, gatewayModel].map((c) => c.exitWithin(WAIT_MS)));
    expect(topExit?.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: framehost <command> \[options\]/);
    for (const name of ['serve', 'headless', 'gateway', 'check', 'init']) expect(top.stdout).toMatch(new RegExp(`^\\s+${name}\\s`, 'm'));
    expect(typoExit?.code).toBe(2);
    expect(typo.stderr).toMatch(/^framehost: unknown command "serv": did you mean serve\?\n/);
    expect(gatewayExit?.code).toBe(0);
    expect(gateway.stdout).toMatch(/^Usage: framehost gateway/);
    expect(gateway.stdout).not.toContain('--model');
    expect(gatewayModelExit?.code).toBe(2);
    expect(gatewayModel.stderr).toMatch(/^framehost: gateway: unknown option --model\n/);
  }, TEST_TIMEOUT_MS);

  it('exits 1 at once on a second signal while the first is still shutting down', async () => {
    const STOP_DEADLINE_MS = 5000;
    const { child, url } = await serve(['--model', SCRIPTED_MODEL, '--model-option', 'mode=ignore-stop', '--stop-deadline', String(STOP_DEADLINE_MS)]);
    await healthUntil(url, 'status ok', (h) => h.status === 'ok');
    const client = await connect(url);
    await client.start();
    // The loop now spins without ever checking stop: only the deadline (or a second signal) ends it.
    await healthUntil(url, 'state running', (h) => h.state === 'running');

    child.signal('SIGTERM');
    await child.waitFor('stdout', /"msg":"shutting down/, 5_000);
    const health = await getHealth(url);
    expect(health?.state).toBe('stopping');
    const sent = Date.now();
    child.signal('SIGINT');
    const exit = await child.exitWithin(STOP_DEADLINE_MS);
    const took = Date.now() - sent;

    expect(exit, child.stderr).toEqual({ code: 1, signal: null });
    expect(took).toBeLessThan(STOP_DEADLINE_MS / 2);
    const lines = logLines(child.stdout);
    expect(lines.find((l) => l.msg === 'second signal: exiting now')).toMatchObject({ signal: 'SIGINT' });
    expect(lines.map((l) => l.msg)).not.toContain('shutdown complete');
  }, TEST_TIMEOUT_MS);
});
