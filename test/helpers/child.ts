/** A child process for end-to-end tests: output collected, exit awaitable with a bound, killable. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class Child {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  readonly proc: ChildProcessWithoutNullStreams;
  private exit: Exit | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.proc = spawn(process.execPath, [...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env });
    this.proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.notify();
    });
    this.proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc.kill(sig);
  }

  kill(): void {
    this.signal('SIGKILL');
  }

  /** The exit, or a rejection if it has not come within `ms` (the child is left running). */
  exitWithin(ms: number): Promise<Exit> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`)), ms);
      void this.exited.then((e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
  }

  /** Resolve with the first match of `pattern` in stdout or stderr (as chosen); reject after `ms` or on exit. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = this[stream].match(pattern);
        if (m) return done(() => resolve(m));
        if (this.exit) return done(() => reject(new Error(`exited (${JSON.stringify(this.exit)}) before ${pattern} on ${stream}\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} on ${stream} within ${ms} ms\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`))), ms);
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn();
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** Children started by a test file; `killAll` in afterEach. */
export function childPool(): { start(args: readonly string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string }): Child; killAll(): Promise<void> } {
  const children: Child[] = [];
  return {
    start(args, options) {
      const c = new Child(args, options);
      children.push(c);
      return c;
    },
    async killAll() {
      const all = children.splice(0);
      for (const c of all) c.kill();
      await Promise.all(all.map((c) => c.exited));
    },
  };
}
