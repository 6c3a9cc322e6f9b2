/** Run the `framehost` command line as a child process and read its JSON lines. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'framehost.mjs');

export type OutLine = Record<string, unknown> & { event: string };

/** The environment without FRAMEHOST_* settings, so that only a test's flags count. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FRAMEHOST_')) env[k] = v;
  return env;
}

/** A server's JSON log lines (pino's), other output skipped. */
export const logLines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });

/** One `framehost` child: its stdout as parsed lines, awaitable. */
export class Cli {
  readonly lines: OutLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcessWithoutNullStreams;
  private notify: () => void = () => {};

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn' } });
    let partial = '';
    this.proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) if (text) this.lines.push(JSON.parse(text) as OutLine);
      this.notify();
    });
    this.proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => resolve(code)));
  }

  send(...requests: (object | string)[]): void {
    for (const r of requests) this.proc.stdin.write(`${typeof r === 'string' ? r : JSON.stringify(r)}\n`);
  }

  end(): void {
    this.proc.stdin.end();
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  /** The first line (from the start) that matches, once it has arrived. */
  async next(match: (line: OutLine) => boolean, timeoutMs = 20_000): Promise<OutLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching line in ${timeoutMs} ms; got:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.notify = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  reply(line: number): Promise<OutLine> {
    return this.next((l) => l.line === line);
  }

  /** Exit code, or a rejection (with the output) if the child has not exited within `ms`. */
  exitWithin(ms: number): Promise<number | null> {
    return Promise.race([
      this.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${ms} ms\nstdout: ${this.lines.map((l) => JSON.stringify(l)).join('\n').slice(-3000)}\nstderr: ${this.stderr.slice(-2000)}`)), ms).unref()),
    ]);
  }}

export /** Run `framehost` to its end with stdin closed; its plain-text output (usage, help). */
function runRaw(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Temporary folders for one test file: `make()` in a test, `removeAll()` in afterEach. */
export function tempDirs(): { make(prefix?: string): string; removeAll(): void } {
  const dirs: string[] = [];
  return {
    make(prefix = 'headless') {
      const dir = mkdtempSync(join(tmpdir(), `framehost-${prefix}-`));
      dirs.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
