/**
 * Debian's `janus` (1.1.2), started by a test with its own minimal configuration in a temporary
 * folder: the REST (HTTP) transport on a free 127.0.0.1 port, the VideoRoom plugin, nothing else
 * (only those two libraries are linked into the folders it loads from), and ICE restricted by
 * `nat.ice_enforce_list` to one of this host's own IPv4 addresses. Janus skips loopback
 * interfaces when it gathers (a listed `lo` or 127.0.0.1 leaves it gathering on every
 * interface), so the host's own address is the closest: the kernel carries traffic between a
 * host's own addresses over `lo`, and the publisher binds the same address. Stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';

const LIBS = '/usr/lib/x86_64-linux-gnu/janus';

/** Resolve once an async check holds, polling every 50 ms; reject after `ms`. */
export async function eventually(what: string | (() => string), check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** This host's first IPv4 address that is not loopback: where Janus and the publisher meet. */
export function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('no IPv4 address other than loopback on this host: Janus 1.1.2 does not gather on loopback');
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function writeConfig(dir: string, port: number, address: string, videoroom: string): void {
  for (const [folder, lib] of [['plugins', 'libjanus_videoroom.so'], ['transports', 'libjanus_http.so']] as const) {
    mkdirSync(join(dir, folder));
    symlinkSync(join(LIBS, folder, lib), join(dir, folder, lib));
  }
  for (const folder of ['events', 'loggers']) mkdirSync(join(dir, folder));
  const folders = { configs_folder: dir, plugins_folder: join(dir, 'plugins'), transports_folder: join(dir, 'transports'), events_folder: join(dir, 'events'), loggers_folder: join(dir, 'loggers') };
  const where = Object.entries(folders).map(([k, v]) => `  ${k} = "${v}"`).join('\n');
  writeFileSync(join(dir, 'janus.jcfg'), `general: {\n${where}\n  debug_level = 4\n  session_timeout = 60\n}\nnat: {\n  ice_enforce_list = "${address}"\n  ice_tcp = false\n}\nmedia: {\n  ipv6 = false\n}\n`);
  writeFileSync(join(dir, 'janus.transport.http.jcfg'), `general: {\n  json = "compact"\n  base_path = "/janus"\n  http = true\n  port = ${port}\n  ip = "127.0.0.1"\n  https = false\n}\nadmin: {\n  admin_http = false\n}\n`);
  writeFileSync(join(dir, 'janus.plugin.videoroom.jcfg'), `general: {\n${videoroom}\n}\n`);
}

export class JanusProcess {
  /** Janus's output, for a failure's message. */
  readonly log: string[] = [];
  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly port: number,
    /** The REST endpoint, http://127.0.0.1:PORT/janus. */
    readonly endpoint: string,
  ) {}

  /**
   * Start Janus with a fresh config on a free port (or `port`, to bring one back) and wait for its
   * REST API; `videoroom` adds lines to the VideoRoom plugin's general section (e.g. an admin_key).
   */
  static async start(options: { port?: number; videoroom?: string } = {}): Promise<JanusProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'framehost-janus-'));
    const p = options.port ?? (await freePort());
    writeConfig(dir, p, hostAddress(), options.videoroom ?? '');
    const child = spawn('janus', ['-F', dir, '-C', join(dir, 'janus.jcfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const j = new JanusProcess(child, dir, p, `http://127.0.0.1:${p}/janus`);
    child.stdout!.on('data', (d: Buffer) => j.log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => j.log.push(d.toString()));
    await eventually(() => `janus answering on ${p} (log: ${j.log.join('').slice(-500)})`, () => j.answers(), 15_000);
    return j;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async answers(): Promise<boolean> {
    if (this.child.exitCode !== null) throw new Error(`janus exited with ${this.child.exitCode}: ${this.log.join('').slice(-800)}`);
    return fetch(`${this.endpoint}/info`).then((r) => r.ok, () => false);
  }

  /** SIGTERM by pid, SIGKILL after 5 s; the config folder goes too. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      process.kill(this.pid, 'SIGTERM');
      const timer = setTimeout(() => this.child.exitCode === null && process.kill(this.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
