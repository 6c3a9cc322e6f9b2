/**
 * The command line's own mistakes and run-time failures, as one-line messages with a hint:
 * a model path that does not exist (or a misspelled built-in), a port in use, a bad URL.
 */
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FramehostError, type ErrorCode } from '../errors.ts';
import { BUILTIN_MODELS, closest, UsageError } from './args.ts';

/**
 * A failure at run time (exit 1) whose message is the whole story: no stack trace. Its code is
 * from the one table (listen_failed, write_failed); main prints the message alone.
 */
export class RunError extends FramehostError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RunError';
  }
}

const BUILTIN_NAMES = [...Object.keys(BUILTIN_MODELS), 'demo'];

/** A file: URL as a path: fileURLToPath, not URL.pathname, which keeps %20 (a folder with a space was "no such file"). */
function filePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (err) {
    throw new UsageError(`--model ${url}: not a file URL of this machine (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** `--model`: a built-in name, a URL, or a module file that exists. Throws UsageError. */
export function checkModelArgument(model: string | undefined): void {
  if (model === undefined || BUILTIN_NAMES.includes(model)) return;
  if (/^[a-z][a-z0-9+.-]*:/i.test(model) && !isAbsolute(model) && !model.startsWith('file:')) return; // a URL: its loader's business
  const path = model.startsWith('file:') ? filePath(model) : resolve(model);
  if (existsSync(path) && statSync(path).isFile()) return;
  const near = !/[\\/.]/.test(model) ? closest(model, BUILTIN_NAMES) : undefined;
  if (near) throw new UsageError(`no model ${JSON.stringify(model)}: did you mean the built-in ${near}?`);
  if (existsSync(path)) throw new UsageError(`--model ${model} is a folder: give the model module's file (e.g. ${model.replace(/\/$/, '')}/model.ts)`);
  throw new UsageError(`--model ${model}: no such file (${path}); built-ins: ${Object.keys(BUILTIN_MODELS).join(', ')}`);
}

/** A WebSocket URL option. Throws UsageError. */
export function checkWebSocketUrl(option: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--${option} ${JSON.stringify(value)} is not a URL: try ws://127.0.0.1:8080`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--${option} needs a ws:// or wss:// URL, got ${url.protocol}`);
}

/** The next port after `port` that is free on `host` (looks at up to 20), for the hint. */
export async function nextFreePort(host: string, port: number): Promise<number | undefined> {
  for (let p = port + 1; p <= Math.min(65535, port + 20); p++) {
    const free = await new Promise<boolean>((done) => {
      const probe = createServer();
      probe.once('error', () => done(false));
      probe.listen(p, host, () => probe.close(() => done(true)));
    });
    if (free) return p;
  }
  return undefined;
}

/** Listening failed: EADDRINUSE and EACCES become one line with a hint. */
export async function listenProblem(err: unknown, host: string, port: number): Promise<RunError | undefined> {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE') {
    const free = await nextFreePort(host, port);
    return new RunError('listen_failed', `port ${port} is in use on ${host}${free ? `: try --port ${free}` : ': try another --port (0 picks a free one)'}`, { cause: err });
  }
  if (code === 'EACCES') return new RunError('listen_failed', `not allowed to listen on port ${port}: ports below 1024 need privileges; try --port 3000`, { cause: err });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new RunError('listen_failed', `cannot listen on host ${host}: not an address of this machine (try --host 127.0.0.1)`, { cause: err });
  return undefined;
}

/**
 * Whether `host:port` can be listened on now, checked before the model loads (seconds) so that a
 * port in use is one line at once. The port is released again at once: one taken in between is
 * still reported the same way when the server listens.
 */
export async function portProblem(host: string, port: number): Promise<RunError | undefined> {
  if (port === 0) return undefined; // any free port
  const err = await new Promise<unknown>((done) => {
    const probe = createServer();
    probe.once('error', done);
    probe.listen(port, host, () => probe.close(() => done(undefined)));
  });
  return err === undefined ? undefined : ((await listenProblem(err, host, port)) ?? new RunError('listen_failed', `cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
}
