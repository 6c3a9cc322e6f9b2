/**
 * Access tokens in the fleet: a real Redis, an in-process gateway and a node process
 * (`framehost serve --fleet --token-key …`), real Socket.IO clients. The gateway takes the same
 * tokens as the node, queues players only, and carries the token's `sub` into the ride; the node
 * then serves exactly that user, whoever else gets hold of the ticket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient, type Socket } from 'socket.io-client';
import { Queue } from 'bullmq';
import { createToken } from '../src/auth/tokens.ts';
import { loadTokenKeys, type TokenKeySet } from '../src/auth/keys.ts';
import { TokenVerifier } from '../src/auth/tokens.ts';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, RideJobData } from '../src/fleet/events.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../src/transport/socket/events.ts';
import type { ErrorValue, Result } from '../src/errors.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { startFleet, type Fleet } from './helpers/fleet.ts';

const KEY = 'fleet-token-key-0123456789-abcdefghijklmnop';
let redis: RedisServer;
let fleet: Fleet | null = null;
const sockets: Socket[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await fleet?.close();
  await redis?.stop();
});

type GatewaySocket = Socket<GatewayServerToClient, GatewayClientToServer>;
type NodeSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Connect, or reject with the handshake's coded error. */
function connect<S extends Socket>(url: string, token?: string): Promise<S> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: token ? { token } : {} }) as S;
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: ErrorValue }) => reject(Object.assign(new Error(err.message), { code: err.data?.code })));
  });
}

const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'connected', (err: { code?: string }) => err.code ?? 'no code');
const call = (s: Socket, event: string, payload: object): Promise<Result<Record<string, unknown>>> => s.timeout(5000).emitWithAck(event, payload) as Promise<Result<Record<string, unknown>>>;
const mint = (role: 'player' | 'spectator', sub: string): Promise<string> => createToken({ key: KEY, role, sub, ttl: '5m' });

describe('the fleet with access tokens', () => {
  it('the gateway admits by token, queues players only and carries sub into the ride; the node serves that sub alone', { timeout: 60_000 }, async () => {
    const keys = (await loadTokenKeys({ key: KEY })) as TokenKeySet;
    fleet = await startFleet(redis.url, { gateway: { tokens: new TokenVerifier(keys) }, args: ['--token-key', KEY] });
    const node = await fleet.startNode().ready();

    // The gateway: no token, a foreign token, a spectator.
    expect(await codeOf(connect(fleet.gateway.url))).toBe('unauthorized');
    expect(await codeOf(connect(fleet.gateway.url, await createToken({ key: 'another-server-key-0123456789-abcdefgh', role: 'player' })))).toBe('unauthorized');
    const spectator = await connect<GatewaySocket>(fleet.gateway.url, await mint('spectator', 'watcher'));
    expect(await call(spectator, 'ride:request', {})).toMatchObject({ ok: false, error: { code: 'forbidden' } });

    // A player rides: the job carries its sub, and the node says whom it serves.
    const rider = await connect<GatewaySocket>(fleet.gateway.url, await mint('player', 'rider-1'));
    const assigned = new Promise<Assignment>((resolve) => rider.once('assigned', resolve));
    const grant = await call(rider, 'ride:request', {});
    expect(grant.ok).toBe(true);
    const jobId = String(grant.ok ? grant.jobId : '');
    const queue = new Queue<RideJobData>(fleet.queue, { connection: { url: redis.url }, prefix: 'framehost' });
    try {
      expect((await queue.getJob(jobId))?.data.sub).toBe('rider-1');
    } finally {
      await queue.close();
    }
    // Another player holding the ride's secret may not take the ride over (on this or any replica).
    const bob = await connect<GatewaySocket>(fleet.gateway.url, await mint('player', 'bob'));
    const secret = String(grant.ok ? grant.secret : '');
    expect(await call(bob, 'ride:request', { resume: { jobId, secret } })).toMatchObject({ ok: false, error: { code: 'not_owner' } });
    const assignment = await assigned;
    expect(assignment.url).toBe(node.url);
    expect((await node.line('job.taken', (l) => l.fleet === 'job.taken' && l.jobId === jobId)).sub).toBe('rider-1');

    // At the node: no token is refused; another user holding the ticket is refused; the rider starts.
    expect(await codeOf(connect(node.url))).toBe('unauthorized');
    const thief = await connect<NodeSocket>(node.url, await mint('player', 'someone-else'));
    expect(await call(thief, 'session:start', { ticket: assignment.ticket })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const onNode = await connect<NodeSocket>(node.url, await mint('player', 'rider-1'));
    expect(await call(onNode, 'session:start', { ticket: assignment.ticket })).toMatchObject({ ok: true });
    expect(await call(onNode, 'session:stop', {})).toMatchObject({ ok: true });
  });
});
