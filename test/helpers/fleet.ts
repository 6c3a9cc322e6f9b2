/**
 * Fleet test harness: real `framehost serve --fleet` node processes (bin/framehost.mjs, tsx),
 * a gateway (in this process, so its record can be read), fleet clients, and the nodes' fleet
 * log lines (pino JSON on stdout) for the invariant checks.
 */
import { randomBytes } from 'node:crypto';
import { Child } from './child.ts';
import { startGateway, type Gateway, type GatewayRecord } from '../../src/fleet/gateway.ts';
import { FleetClient, type FleetClientOptions } from '../../src/fleet/client.ts';
import { quietLogger } from './runtime.ts';
import type { GatewaySettings } from '../../src/fleet/options.ts';

export const BIN = 'bin/framehost.mjs';

/** The environment without FRAMEHOST_* settings, so that only the flags count. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FRAMEHOST_')) env[k] = v;
  return { ...env, ...extra };
}

export interface NodeLine {
  readonly fleet: string;
  readonly time: number;
  readonly node: string;
  readonly jobId?: string;
  readonly attempt?: number;
  readonly sessionId?: string;
  readonly reason?: string;
  readonly fenced?: boolean;
  readonly issuedAt?: number;
  readonly take?: number;
  readonly takesIssued?: number;
  readonly [key: string]: unknown;
}

export interface NodeSpec {
  readonly leaseMs?: number;
  readonly stallMs?: number;
  readonly noShowMs?: number;
  readonly drainDeadlineMs?: number;
  readonly maxStalled?: number;
  readonly orphanMs?: number;
  /** More `serve` flags for this node (after the defaults, so a repeated option wins). */
  readonly args?: readonly string[];
}

export class FleetNodeProcess {
  readonly child: Child;
  url = '';
  id = '';
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = new Child(args, { env: cleanEnv(env) });
  }
  async ready(ms = 30_000): Promise<this> {
    const m = await this.child.waitFor('stderr', /^framehost: open (http:\/\/127\.0\.0\.1:\d+) in a browser$/m, ms);
    this.url = m[1]!;
    await this.child.waitFor('stdout', /"fleet":"ready"/, ms);
    this.id = this.lines().find((l) => l.fleet === 'ready')?.node ?? '';
    return this;
  }
  /** The node's fleet log lines so far. */
  lines(): NodeLine[] {
    const out: NodeLine[] = [];
    for (const line of this.child.stdout.split('\n')) {
      if (!line.startsWith('{') || !line.includes('"fleet":')) continue;
      try {
        out.push(JSON.parse(line) as NodeLine);
      } catch {
        /* a partial line */
      }
    }
    return out;
  }
  /** Resolve with the first fleet line matching `check` (polling stdout). */
  async line(what: string, check: (l: NodeLine) => boolean, ms = 20_000): Promise<NodeLine> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const l = this.lines().find(check);
      if (l) return l;
      if (!this.child.running) break;
      await sleep(20);
    }
    throw new Error(`node ${this.id}: no ${what} within ${ms} ms\n${this.child.stdout.slice(-3000)}\n${this.child.stderr.slice(-2000)}`);
  }
}

export interface Fleet {
  readonly redisUrl: string;
  readonly queue: string;
  readonly secret: string;
  readonly gateway: Gateway;
  readonly records: GatewayRecord[];
  readonly nodes: FleetNodeProcess[];
  startNode(spec?: NodeSpec): FleetNodeProcess;
  client(options?: FleetClientOptions): FleetClient;
  close(): Promise<void>;
}

export async function startFleet(redisUrl: string, spec: NodeSpec & { graceMs?: number; gateway?: Partial<GatewaySettings> } = {}): Promise<Fleet> {
  const queue = `rides-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(24).toString('base64url');
  const gateway = await startGateway({ redisUrl, queue, host: '127.0.0.1', port: 0, reconnectGraceMs: spec.graceMs ?? 300, positionDebounceMs: 30, positionRefreshMs: 500, nodeStaleMs: 2000, secret, logger: quietLogger(), ...spec.gateway });
  await gateway.connected; // it listens at once; the tests want it connected to Redis first
  const records: GatewayRecord[] = [];
  gateway.on('record', (r) => records.push(r));
  const nodes: FleetNodeProcess[] = [];
  const clients: FleetClient[] = [];
  return {
    redisUrl,
    queue,
    secret,
    gateway,
    records,
    nodes,
    startNode(n = {}) {
      const s = { ...spec, ...n };
      const args = [
        BIN, 'serve', '--fleet', '--port', '0', '--redis', redisUrl, '--queue', queue,
        '--lease', String(s.leaseMs ?? 1500), '--stall-interval', String(s.stallMs ?? 500), '--no-show', String(s.noShowMs ?? 3000),
        '--drain-deadline', String(s.drainDeadlineMs ?? 10_000), '--max-stalled', String(s.maxStalled ?? 2), '--orphan-timeout', String(s.orphanMs ?? 2000),
        '--model-option', 'size=32', '--model-option', 'fps=30', '--threads', '1', '--log-level', 'info',
        '--ice-host-addresses', '127.0.0.1',
        ...(s.args ?? []),
      ];
      // The secret through the environment (as in production): base64url may begin with '-', which
      // a command line would read as a flag.
      const node = new FleetNodeProcess(args, { FRAMEHOST_FLEET_SECRET: secret });
      nodes.push(node);
      return node;
    },
    client(options = {}) {
      const c = FleetClient.connect(gateway.url, { timeoutMs: 5000, ...options });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients.splice(0)) c.close();
      for (const n of nodes) n.child.kill(); // SIGKILL ends a stopped (SIGSTOP) process too
      await Promise.all(nodes.map((n) => n.child.exited));
      await gateway.close();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve after `check` holds (polling); reject after `ms`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
