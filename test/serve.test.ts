/**
 * `framehost serve`, end to end: the real launcher (bin/framehost.mjs) in a child process on a
 * port of its choosing, driven over HTTP and Socket.IO, stopped with signals.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FramehostClient } from '../src/transport/client.ts';
import { childPool, type Child } from './helpers/child.ts';
import { SCRIPTED_MODEL, until } from './helpers/runtime.ts';
import { nextEvent, sleep } from './helpers/server.ts';

const BIN = 'bin/framehost.mjs';
// Each test starts real `framehost` processes (tsx, a worker, ONNX Runtime): generous on a busy machine.
const TEST_TIMEOUT_MS = 60_000;
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
  const m = await child.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m);
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

  it('prints usage for --help (exit 0) and refuses an unknown flag (exit 2)', async () => {
    const help = children.start([BIN, 'serve', '--help'], { env: cleanEnv() });
    const bad = children.start([BIN, 'serve', '--no-such-flag'], { env: cleanEnv() });
    const [helpExit, badExit] = await Promise.all([help.exitWithin(20_000), bad.exitWithin(20_000)]);

    expect(helpExit, help.stderr).toEqual({ code: 0, signal: null });
    expect(help.stdout).toMatch(/^Usage: framehost <command> \[options\]/);
    expect(help.stdout).toMatch(/^\s+serve\s+serve the model/m);
    expect(help.stdout).toContain('framehost serve [--host 127.0.0.1] [--port 3000] [--inspect]');
    expect(help.stdout).toMatch(/--inspect\s/);
    expect(help.stdout).toContain('--inspect-url WS_URL');
    expect(help.stdout).toContain('--stop-deadline MS');

    expect(badExit).toEqual({ code: 2, signal: null });
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^framehost: serve: .*--no-such-flag/);
    expect(bad.stderr).toContain('Usage: framehost <command> [options]');
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
