/**
 * Vitest globalSetup: system packages the tests need. The browser test drives the demo page in
 * a real Chromium (playwright-core, which brings no browser of its own); the --publish test starts
 * Debian's janus. When it is missing and
 * we are root (a CI container), install it with apt; otherwise fail loudly with the command to
 * run. Tests are never skipped silently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

const HOW_TO = `install it with: sudo apt-get install -y chromium (Debian/Ubuntu), or set up ${CHROMIUM} otherwise`;

function apt(args: string[], timeoutMs: number): void {
  try {
    execFileSync('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as Error & { stderr?: Buffer; stdout?: Buffer; signal?: string };
    const tail = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim().split('\n').slice(-15).join('\n');
    const why = e.signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : e.message;
    throw new Error(`apt-get ${args.join(' ')} failed (${why}); ${HOW_TO}\n${tail}`, { cause: err });
  }
}

function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new Error(`Chromium is missing at ${CHROMIUM} and the browser tests need it; ${HOW_TO}`);
  }
  console.log(`[setup] ${CHROMIUM} missing: installing chromium with apt-get (root)…`);
  apt(['update', '-qq'], 180_000);
  apt(['install', '-y', '-qq', 'chromium'], 600_000);
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing; ${HOW_TO}`);
  console.log('[setup] chromium installed');
}

/** Another apt-get (a CI step, unattended upgrades) may hold dpkg's lock: wait for it rather than fail. */
function waitForDpkgLock(): void {
  execFileSync('sh', ['-c', 'while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; do sleep 2; done'], { stdio: 'ignore', timeout: 600_000 });
}

/** Debian's janus (WebRTC SFU): test/janus-publish.test.ts starts one with its own config. */
export const JANUS = '/usr/bin/janus';

function ensureJanus(): void {
  if (existsSync(JANUS)) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new Error(`janus is missing at ${JANUS} and the --publish test needs it; install it with: sudo apt-get install -y janus (Debian/Ubuntu)`);
  }
  console.log(`[setup] ${JANUS} missing: installing janus with apt-get (root)…`);
  waitForDpkgLock();
  apt(['update', '-qq'], 180_000);
  waitForDpkgLock();
  apt(['install', '-y', '-qq', 'janus'], 600_000);
  if (!existsSync(JANUS)) throw new Error(`apt-get installed janus but ${JANUS} is still missing`);
  console.log('[setup] janus installed');
}

export default function setup(): void {
  ensureChromium();
  ensureJanus();
}
