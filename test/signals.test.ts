/**
 * SIGTERM to the main process, for every documented way to run a server: `npm start`,
 * `npx framehost serve`, `bin/framehost.mjs serve`, the Dockerfile's CMD (run here exactly as
 * written, as the entry process: there is no Docker engine on this machine), and the fleet's
 * `gateway` and `serve --fleet` (with a real redis-server). Docker, systemd and Kubernetes signal
 * the main process alone, so that is all the test signals. Each must drain as documented (a
 * running session ends `shutdown`, its client told), exit 0, leave no process behind (every
 * process of its process group, and every descendant seen while it ran, is gone) and release
 * its port.
 *
 * Issue 11: `npm start` ran `sh -c "tsx …"`; SIGTERM made npm exit 143 at once while the
 * server, never signalled, kept running with its port bound.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FramehostClient } from '../src/client/client.ts';
import { ROOT } from './helpers/child.ts';
import { logLines } from './helpers/cli.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { nextEvent, sleep } from './helpers/server.ts';
import { until } from './helpers/runtime.ts';
import { until as untilAsync } from './helpers/fleet.ts';
import { launchedThroughShell } from '../src/cli/launcher.ts';

const TEST_TIMEOUT_MS = 90_000;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** An entry process: any command line, in its own process group (so its leftovers can be found). */
class Entry {
  stdout = '';
  stderr = '';
  readonly proc: ChildProcessWithoutNullStreams;
  readonly exited: Promise<Exit>;

  constructor(argv: readonly string[], env: NodeJS.ProcessEnv) {
    const [command, ...args] = argv;
    this.proc = spawn(command!, args, { cwd: ROOT, env, detached: true });
    this.proc.stdout.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    this.proc.stderr.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  async waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, ms = 45_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this[stream].match(pattern);
      if (m) return m;
      if (Date.now() > deadline || this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`no ${pattern} on ${stream}\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`);
      }
      await sleep(50);
    }
  }

  exitWithin(ms: number): Promise<Exit> {
    return Promise.race([
      this.exited,
      sleep(ms).then(() => {
        throw new Error(`no exit within ${ms} ms\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`);
      }),
    ]);
  }
}

/** pid → { ppid, pgrp } for every process, from /proc. */
function processTable(): Map<number, { ppid: number; pgrp: number; comm: string }> {
  const table = new Map<number, { ppid: number; pgrp: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses: split after the last ')'.
      const close = stat.lastIndexOf(')');
      const [, ppid, pgrp] = stat.slice(close + 2).split(' ');
      table.set(Number(name), { ppid: Number(ppid), pgrp: Number(pgrp), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      /* gone meanwhile */
    }
  }
  return table;
}

function descendantsOf(pid: number): number[] {
  const table = processTable();
  const out: number[] = [];
  const walk = (parent: number): void => {
    for (const [child, p] of table) {
      if (p.ppid === parent && !out.includes(child)) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** Processes still alive among `pids`, or in process group `pgrp` (zombies excluded: they are dead). */
function leftovers(pids: readonly number[], pgrp: number): string[] {
  const table = processTable();
  const alive = (pid: number): boolean => {
    try {
      return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const found = new Set<number>([...pids.filter((pid) => table.has(pid)), ...[...table].filter(([, p]) => p.pgrp === pgrp).map(([pid]) => pid)]);
  return [...found].filter(alive).map((pid) => `${pid} ${table.get(pid)?.comm ?? '?'}`);
}

async function noLeftoversWithin(pids: readonly number[], pgrp: number, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  let left = leftovers(pids, pgrp);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = leftovers(pids, pgrp);
  }
  return left;
}

/** The port is free again: we can listen on it ourselves. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The environment without framehost's and npm's own settings, plus `extra`. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FRAMEHOST_') && !k.startsWith('npm_')) env[k] = v;
  return { ...env, FRAMEHOST_HOST: '127.0.0.1', FRAMEHOST_PORT: '0', ...extra };
}

const entries: Entry[] = [];
const clients: FramehostClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  // Whatever a failed test left: its process group, by pid.
  for (const e of entries.splice(0)) {
    for (const left of leftovers(descendantsOf(e.pid), e.pid)) {
      try {
        process.kill(Number(left.split(' ')[0]), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (e.proc.exitCode === null && e.proc.signalCode === null) e.proc.kill('SIGKILL');
  }
});

function start(argv: readonly string[], env: NodeJS.ProcessEnv): Entry {
  const e = new Entry(argv, env);
  entries.push(e);
  return e;
}

/**
 * A node server started by `argv`: run a session, SIGTERM the entry process alone, and check the
 * drain (session ended `shutdown`, the server's last log line), the exit, leftovers and the port.
 */
async function serveAndTerminate(argv: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<{ entry: Entry; exit: Exit; url: string }> {
  const entry = start(argv, env);
  const m = await entry.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m);
  const url = m[1]!;
  const port = Number(m[2]);
  await entry.waitFor('stdout', /"msg":"ready: /);
  const client = await FramehostClient.connect(url, { reconnection: false });
  clients.push(client);
  let frames = 0;
  client.onFrame(() => frames++);
  const { sessionId } = await client.start();
  while (frames < 2) await sleep(20);
  const seen = descendantsOf(entry.pid);
  const ended = nextEvent<{ sessionId: string; reason: string }>(client, 'session:ended', 15_000);

  process.kill(entry.pid, 'SIGTERM'); // the entry process alone, as a process manager does
  expect(await ended).toMatchObject({ sessionId, reason: 'shutdown' });
  const exit = await entry.exitWithin(20_000);
  expect(await noLeftoversWithin(seen, entry.pid, 10_000), `left behind by ${argv.join(' ')}`).toEqual([]);
  expect(await portIsFree(port)).toBe(true);
  // The server's own account: it drained and flushed its log (its last line).
  expect(logLines(entry.stdout).map((l) => l.msg).at(-1), entry.stdout.slice(-2000)).toBe('shutdown complete');
  return { entry, exit, url };
}

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfile(): { instruction: string; args: string }[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [instruction, ...rest] = l.split(/\s+/);
      return { instruction: instruction!.toUpperCase(), args: rest.join(' ') };
    });
}

/** An exec-form (JSON array) command of the Dockerfile: a shell form would put sh in between. */
function execForm(args: string): string[] {
  const argv = JSON.parse(args) as unknown;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new Error(`not an exec-form command: ${args}`);
  return argv;
}

describe('the launcher watch (src/cli/launcher.ts)', () => {
  it('watches only a server that npm started through a shell: not one started from a shell by hand, nor by node', async () => {
    const shell = spawn('/bin/sh', ['-c', 'sleep 30; true'], { stdio: 'ignore' });
    try {
      await until('the shell runs', () => existsSync(`/proc/${shell.pid}/comm`));
      const npm = { npm_lifecycle_event: 'start' };
      expect(launchedThroughShell(npm, shell.pid!)).toBe(true);
      expect(launchedThroughShell({ npm_command: 'exec' }, shell.pid!)).toBe(true);
      // Not started by npm (an interactive shell, nohup): the server must outlive its shell.
      expect(launchedThroughShell({}, shell.pid!)).toBe(false);
      // npm's child directly (exec'd), or any non-shell parent: the signal reaches the server itself.
      expect(launchedThroughShell(npm, process.pid)).toBe(false);
    } finally {
      shell.kill('SIGKILL');
    }
  });
});

describe('SIGTERM to the main process drains the server and leaves nothing behind', () => {
  it('npm start', async () => {
    const { exit } = await serveAndTerminate(['npm', 'start']);
    expect(exit).toEqual({ code: 0, signal: null });
  }, TEST_TIMEOUT_MS);

  it('npx framehost serve', async () => {
    const { exit } = await serveAndTerminate(['npx', 'framehost', 'serve']);
    expect(exit).toEqual({ code: 0, signal: null });
  }, TEST_TIMEOUT_MS);

  it('bin/framehost.mjs serve', async () => {
    const { exit } = await serveAndTerminate([process.execPath, 'bin/framehost.mjs', 'serve']);
    expect(exit).toEqual({ code: 0, signal: null });
  }, TEST_TIMEOUT_MS);

  // Outside this repository npm may run `npx` through dash, which stays in between and dies of
  // the signal without passing it on: npm exits by the signal at once. The server notices its
  // shell is gone and drains anyway (src/cli/launcher.ts): nothing left running, port released.
  it('npx through dash (a user project without our .npmrc): the server still drains and exits', async () => {
    const { exit } = await serveAndTerminate(['npx', 'framehost', 'serve'], cleanEnv({ npm_config_script_shell: '/bin/sh' }));
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
  }, TEST_TIMEOUT_MS);

  // systemd (KillMode=control-group) and Ctrl-C signal the whole group: the server and its shell
  // together. The shell's going is then the shutdown already under way, not a second signal that
  // exits at once: a drain longer than the watch's 250 ms (here a loop that ignores stop, killed
  // at a 1.5 s deadline) still runs to its end.
  it('npx through dash, SIGTERM to the whole process group: one drain, not a second-signal exit', async () => {
    const argv = ['npx', 'framehost', 'serve', '--model', 'test/fixtures/models/scripted.ts', '--model-option', 'mode=ignore-stop', '--stop-deadline', '1500'];
    const entry = start(argv, cleanEnv({ npm_config_script_shell: '/bin/sh' }));
    const m = await entry.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m);
    await entry.waitFor('stdout', /"msg":"ready: /);
    const client = await FramehostClient.connect(m[1]!, { reconnection: false });
    clients.push(client);
    await client.start();
    const seen = descendantsOf(entry.pid);
    process.kill(-entry.pid, 'SIGTERM');
    await entry.exitWithin(20_000);
    expect(await noLeftoversWithin(seen, entry.pid, 15_000), `left behind by ${argv.join(' ')}`).toEqual([]);
    const msgs = logLines(entry.stdout).map((l) => l.msg);
    expect(msgs, entry.stdout.slice(-2000)).not.toContain('second signal: exiting now');
    expect(msgs.at(-1), entry.stdout.slice(-2000)).toBe('shutdown complete');
  }, TEST_TIMEOUT_MS);

  describe('the Dockerfile', () => {
    const steps = dockerfile();
    const one = (instruction: string): string => {
      const found = steps.filter((s) => s.instruction === instruction);
      expect(found, instruction).toHaveLength(1);
      return found[0]!.args;
    };

    it('is node:20-slim, npm ci, a non-root user, STOPSIGNAL SIGTERM, a healthcheck on /ready, an exec-form entry', () => {
      expect(one('FROM')).toBe('node:20-slim');
      expect(steps.some((s) => s.instruction === 'RUN' && /\bnpm ci\b/.test(s.args))).toBe(true);
      const user = one('USER');
      expect(user).not.toMatch(/^(root|0)(:|$)/);
      expect(one('STOPSIGNAL')).toBe('SIGTERM');
      expect(one('HEALTHCHECK')).toMatch(/\/ready/);
      expect(steps.some((s) => s.instruction === 'ENTRYPOINT')).toBe(false);
      expect(execForm(one('CMD'))[0]).toBe('node');
      // Everything the entry command needs is copied in.
      const copied = steps.filter((s) => s.instruction === 'COPY').flatMap((s) => s.args.split(/\s+/).slice(0, -1));
      for (const path of ['package.json', 'package-lock.json', 'bin', 'src']) expect(copied).toContain(path);
    });

    it('its CMD, run as the entry process, drains on SIGTERM and exits 0; its HEALTHCHECK passes while it serves', async () => {
      const env: NodeJS.ProcessEnv = cleanEnv();
      // The image's ENV, then this test's host and port (the image listens on 0.0.0.0:3000).
      for (const step of steps.filter((s) => s.instruction === 'ENV')) {
        for (const pair of step.args.match(/\S+=\S+/g) ?? []) {
          const [key, value] = pair.split('=') as [string, string];
          env[key] = value;
        }
      }
      expect(env.FRAMEHOST_HOST).toBe('0.0.0.0');
      Object.assign(env, { FRAMEHOST_HOST: '127.0.0.1', FRAMEHOST_PORT: '0' });
      const cmd = execForm(one('CMD'));
      const health = execForm(one('HEALTHCHECK').replace(/^.*?\bCMD\s+/, ''));

      const entry = start(cmd, env);
      const m = await entry.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m);
      await entry.waitFor('stdout', /"msg":"ready: /);
      const port = m[2]!;
      const check = start(health, { ...env, FRAMEHOST_PORT: port });
      expect(await check.exitWithin(10_000)).toEqual({ code: 0, signal: null });

      const client = await FramehostClient.connect(m[1]!, { reconnection: false });
      clients.push(client);
      const { sessionId } = await client.start();
      const seen = descendantsOf(entry.pid);
      const ended = nextEvent<{ sessionId: string; reason: string }>(client, 'session:ended', 15_000);
      process.kill(entry.pid, 'SIGTERM');
      expect(await ended).toMatchObject({ sessionId, reason: 'shutdown' });
      expect(await entry.exitWithin(20_000)).toEqual({ code: 0, signal: null });
      expect(await noLeftoversWithin(seen, entry.pid, 10_000)).toEqual([]);
      expect(await portIsFree(Number(port))).toBe(true);
      // And the healthcheck fails once it is gone.
      const after = start(health, { ...env, FRAMEHOST_PORT: port });
      expect((await after.exitWithin(10_000)).code).toBe(1);
    }, TEST_TIMEOUT_MS);
  });

  describe('the fleet (real redis-server)', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('framehost gateway', async () => {
      const entry = start([process.execPath, 'bin/framehost.mjs', 'gateway', '--redis', redis.url, '--queue', `sig-${process.pid}`], cleanEnv());
      const m = await entry.waitFor('stderr', /^framehost: gateway on (http:\/\/127\.0\.0\.1:(\d+))$/m);
      expect((await fetch(`${m[1]}/ready`)).status).toBe(200);
      const seen = descendantsOf(entry.pid);
      process.kill(entry.pid, 'SIGTERM');
      expect(await entry.exitWithin(20_000)).toEqual({ code: 0, signal: null });
      expect(await noLeftoversWithin(seen, entry.pid, 10_000)).toEqual([]);
      expect(await portIsFree(Number(m[2]))).toBe(true);
      expect(logLines(entry.stdout).map((l) => l.msg)).toContain('gateway shutting down');
    }, TEST_TIMEOUT_MS);

    it('framehost serve --fleet', async () => {
      const args = ['serve', '--fleet', '--redis', redis.url, '--queue', `sig-${process.pid}`, '--secret', 'a-test-secret-of-some-length', '--model-option', 'size=32'];
      const entry = start([process.execPath, 'bin/framehost.mjs', ...args], cleanEnv());
      const m = await entry.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:(\d+)) in a browser$/m);
      await entry.waitFor('stdout', /"fleet":"ready"/);
      const seen = descendantsOf(entry.pid);
      process.kill(entry.pid, 'SIGTERM');
      expect(await entry.exitWithin(20_000)).toEqual({ code: 0, signal: null });
      expect(await noLeftoversWithin(seen, entry.pid, 10_000)).toEqual([]);
      expect(await portIsFree(Number(m[2]))).toBe(true);
      const messages = logLines(entry.stdout).map((l) => String(l.msg));
      expect(messages.some((msg) => msg.startsWith('draining'))).toBe(true);
      // (The node's fleet lines may land after it: "the last line" is checked for plain serve only.)
      expect(messages).toContain('shutdown complete');
    }, TEST_TIMEOUT_MS);
  });
});
