/**
 * The one case where SIGTERM to the main process cannot reach the server: npm runs a command
 * through `sh -c`, and Debian's sh (dash) does not exec the command, so it stays in between.
 * SIGTERM to npm (what Docker, systemd and Kubernetes send) is passed to that shell, which dies
 * without passing it on, and the server would run on, orphaned, with its port bound. It happens
 * with a user's own `"start": "framehost serve"` and with `npx framehost serve` (this repository
 * avoids it for itself: `npm start` is `exec node …`, and its .npmrc runs scripts with bash, which
 * execs a lone command).
 *
 * So, when npm started us and our parent is a shell, we watch the parent: once it is gone (it
 * only exits before us when it was killed), the server drains as on SIGTERM. Not otherwise: a
 * server started from an interactive shell or with nohup must outlive its shell.
 */
import { readFileSync } from 'node:fs';

const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'zsh', 'busybox']);
/** How often the parent is checked: the drain starts at most this long after the signal. */
const POLL_MS = 250;

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/** Our parent when this module was loaded (at startup): a shell killed while the model loads is still noticed. */
const STARTUP_PPID = process.ppid;

/** Whether npm started us through a shell that stays between it and us. */
export function launchedThroughShell(env: NodeJS.ProcessEnv = process.env, ppid: number = STARTUP_PPID): boolean {
  const byNpm = env.npm_lifecycle_event !== undefined || env.npm_command !== undefined;
  const parent = commandOf(ppid);
  return byNpm && parent !== undefined && SHELLS.has(parent);
}

/**
 * Call `gone` once if the launching shell goes away; returns the function that stops watching.
 * Does nothing (and costs nothing) unless `launchedThroughShell()`.
 */
export function onLauncherGone(gone: () => void): () => void {
  if (!launchedThroughShell()) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === STARTUP_PPID) return;
    clearInterval(timer);
    gone();
  }, POLL_MS).unref();
  return () => clearInterval(timer);
}
