/**
 * The gateway as an operator runs it (`framehost gateway`, a child process) around Redis
 * outages: it listens at once with Redis down, answers /ready 503 with the reason, recovers by
 * itself when a real redis-server comes up late on its port, goes back to 503 when that server is
 * stopped (by its pid), and exits 0 on SIGTERM at each of those stages. A client written as
 * socket.io-client's and python-socketio's defaults are (polling first, then the upgrade) rides
 * through it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, RideEnd } from '../src/fleet/events.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../src/transport/socket/events.ts';
import type { Result } from '../src/errors.ts';
import { freePort, startRedis, type RedisServer } from './helpers/redis.ts';
import { BIN, cleanEnv, FleetNodeProcess, until } from './helpers/fleet.ts';
import { Child } from './helpers/child.ts';

const children: Child[] = [];
let redis: RedisServer | null = null;

afterAll(async () => {
  for (const c of children) c.kill();
  await Promise.allSettled(children.map((c) => c.exited));
  await redis?.stop();
});

interface Ready {
  readonly status: number;
  readonly body: { ready: boolean; reason?: string };
}

async function ready(url: string): Promise<Ready> {
  const res = await fetch(`${url}/ready`);
  return { status: res.status, body: (await res.json()) as Ready['body'] };
}

async function startGatewayCli(redisUrl: string, queue: string, extra: string[] = []): Promise<{ child: Child; url: string }> {
  const child = new Child([BIN, 'gateway', '--redis', redisUrl, '--port', '0', '--queue', queue, '--log-level', 'info', ...extra], { env: cleanEnv() });
  children.push(child);
  const m = await child.waitFor('stderr', /^framehost: gateway on (http:\/\/127\.0\.0\.1:\d+)$/m, 20_000);
  return { child, url: m[1]! };
}

describe('gateway: Redis away at start, back, and gone again', () => {
  it('listens at once, answers 503 with the reason, recovers, serves a polling-first client, and exits 0 on SIGTERM at each stage', async () => {
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${port}`;
    const queue = `rides-${randomBytes(4).toString('hex')}`;
    const secret = randomBytes(24).toString('base64url');

    // Stage 1: nothing listens on the Redis port.
    const a = await startGatewayCli(redisUrl, queue, ['--min-nodes', '1']);
    const b = await startGatewayCli(redisUrl, queue);
    const down = await ready(a.url);
    expect(down.status).toBe(503);
    expect(down.body.ready).toBe(false);
    expect(down.body.reason).toMatch(/Redis/);
    expect(down.body.reason).toMatch(/ECONNREFUSED/);
    const health = (await (await fetch(`${a.url}/health`)).json()) as { status: string; redis: { state: string } };
    expect(health).toMatchObject({ status: 'degraded', redis: { state: 'connecting' } });
    // A ride request is refused at once with a code, not left hanging.
    const early: Socket<GatewayServerToClient, GatewayClientToServer> = ioClient(a.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      const r = await early.timeout(5000).emitWithAck('ride:request', {});
      expect(r.ok ? 'ok' : r.error.code).toBe('queue_unavailable');
    } finally {
      early.close();
    }
    b.child.signal('SIGTERM');
    expect((await b.child.exitWithin(10_000)).code).toBe(0);

    // Stage 2: Redis comes up late on that port; the gateway notices by itself.
    redis = await startRedis({ port });
    const noNodes = await until('the gateway reconnected', async () => {
      const r = await ready(a.url);
      return r.body.reason?.includes('min-nodes') ? r : undefined;
    }, 15_000);
    expect(noNodes.status).toBe(503); // Redis is back, but --min-nodes 1 and no node yet
    const node = new FleetNodeProcess(
      [BIN, 'serve', '--fleet', '--port', '0', '--redis', redisUrl, '--queue', queue, '--lease', '1500', '--stall-interval', '500', '--model-option', 'size=32', '--model-option', 'fps=30', '--threads', '1', '--log-level', 'info'],
      { FRAMEHOST_FLEET_SECRET: secret },
    );
    children.push(node.child);
    await node.ready();
    await until('ready with a node', async () => (await ready(a.url)).status === 200, 10_000);
    // Stage 2 also for a gateway started while Redis is up.
    const c = await startGatewayCli(redisUrl, queue);
    await until('the new gateway ready', async () => (await ready(c.url)).status === 200, 10_000);
    c.child.signal('SIGTERM');
    expect((await c.child.exitWithin(10_000)).code).toBe(0);

    // A raw client with socket.io-client's defaults: HTTP long-polling first, then the upgrade.
    const gw: Socket<GatewayServerToClient, GatewayClientToServer> = ioClient(a.url, { forceNew: true, reconnection: false });
    const transports: string[] = [];
    gw.io.on('open', () => {
      transports.push(gw.io.engine.transport.name); // the transport the engine opened with
      gw.io.engine.on('upgrade', (t: { name: string }) => transports.push(t.name));
    });
    let nodeSocket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
    try {
      await new Promise<void>((resolve, reject) => {
        gw.once('connect', () => resolve());
        gw.once('connect_error', reject);
      });
      expect(transports[0]).toBe('polling');
      const assigned = new Promise<Assignment>((resolve) => gw.once('assigned', resolve));
      const ended = new Promise<RideEnd>((resolve) => gw.once('ended', resolve));
      const grant = await gw.timeout(5000).emitWithAck('ride:request', {});
      expect(grant.ok, JSON.stringify(grant)).toBe(true);
      const a1 = await assigned;
      expect(a1.node).toBe(node.id);
      nodeSocket = ioClient(a1.url, { forceNew: true, reconnection: false });
      let frames = 0;
      nodeSocket.on('frame', () => frames++);
      const started = (await nodeSocket.timeout(5000).emitWithAck('session:start', { ticket: a1.ticket })) as Result;
      expect(started.ok, JSON.stringify(started)).toBe(true);
      await until('frames over the polling-first client', () => frames >= 3);
      await until('the gateway connection upgraded', () => transports.includes('websocket'), 5000);
      expect(transports).toEqual(['polling', 'websocket']);
      const stopped = (await nodeSocket.timeout(5000).emitWithAck('session:stop', {})) as Result;
      expect(stopped.ok).toBe(true);
      expect((await ended).reason).toBe('stopped');
    } finally {
      nodeSocket?.close();
      gw.close();
    }

    // Stage 3: Redis goes away (stopped by its pid): 503 again with the reason, then SIGTERM.
    const pid = redis.pid;
    await redis.stop();
    redis = null;
    expect(() => process.kill(pid, 0)).toThrow(); // that redis-server is gone
    const lost = await until('503 after Redis went away', async () => {
      const r = await ready(a.url);
      return r.status === 503 ? r : undefined;
    }, 10_000);
    expect(lost.body.reason).toMatch(/Redis/);
    a.child.signal('SIGTERM');
    const exit = await a.child.exitWithin(10_000);
    expect(exit.code, a.child.stderr.slice(-2000)).toBe(0);
    expect(a.child.stdout).toMatch(/connected to Redis/);
  }, 90_000);
});
