/**
 * A throwaway Redis for the fleet tests: Debian's redis-server on a free loopback port, no
 * persistence, `noeviction` (BullMQ's requirement: an evicted job key corrupts the queue).
 * Each test file starts its own in beforeAll and stops exactly that instance in afterAll; the
 * URL is also put in REDIS_URL for code that reads it.
 *
 * When redis-server is missing and we are root (a CI container), it is installed with apt;
 * otherwise the tests fail with the command to run. Never skipped silently.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_SERVER = '/usr/bin/redis-server';
const HOW_TO = 'install it with: sudo apt-get install -y redis-server (Debian/Ubuntu)';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** The redis-server process; stop() ends exactly this one. */
  readonly pid: number;
  stop(): Promise<void>;
}

function ensureRedisServer(): void {
  if (existsSync(REDIS_SERVER)) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) throw new Error(`redis-server is missing at ${REDIS_SERVER} and the fleet tests need it; ${HOW_TO}`);
  const apt = (args: string[], timeout: number): void => {
    try {
      execFileSync('apt-get', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: ['ignore', 'pipe', 'pipe'], timeout, killSignal: 'SIGKILL' });
    } catch (err) {
      throw new Error(`apt-get ${args.join(' ')} failed (${(err as Error).message}); ${HOW_TO}`, { cause: err });
    }
  };
  apt(['update', '-qq'], 180_000);
  apt(['install', '-y', '-qq', 'redis-server'], 300_000);
  if (!existsSync(REDIS_SERVER)) throw new Error(`apt-get installed redis-server but ${REDIS_SERVER} is still missing; ${HOW_TO}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, proc: ChildProcess, output: () => string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${output().slice(-2000)}`);
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') return;
    } catch {
      /* not up yet */
    } finally {
      r.disconnect();
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`redis-server did not answer within ${ms} ms: ${output().slice(-2000)}`);
}

/** `port`: a given one (a test that starts Redis after the code that will use it); else a free one. */
/** A redis-server on 127.0.0.1; `args` are added after this helper's own (later flags win in redis-server). */
export async function startRedis(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  ensureRedisServer();
  let lastError: unknown;
  // A port picked free may be taken before redis binds it: try a few (a given port: once).
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'framehost-redis-'));
    let out = '';
    const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir, '--loglevel', 'warning', ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, proc, () => out, 10_000);
    } catch (err) {
      lastError = err;
      proc.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    process.env.REDIS_URL = url;
    return {
      url,
      port,
      pid: proc.pid!,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
        if (process.env.REDIS_URL === url) delete process.env.REDIS_URL;
      },
    };
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
