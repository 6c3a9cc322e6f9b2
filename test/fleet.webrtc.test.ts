/**
 * WebRTC through the fleet: a real Redis, the gateway, and a `framehost serve --fleet` node
 * process started with its own ICE server. A FleetClient rides through the gateway to the node
 * it is handed; on that node's connection a Node libwebrtc peer (test/helpers/webrtc.ts, the
 * page's part) negotiates, attaches with `encoding: 'webrtc'`, and decodes changing frames sent
 * by the node itself. The gateway only ever carries the ride's control messages.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { Result } from '../src/errors.ts';
import type { Assignment, GatewayClientToServer, GatewayServerToClient } from '../src/fleet/events.ts';
import { FramehostClient } from '../src/client/client.ts';
import type { WebRtcConfig } from '../src/transport/webrtc/wire.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { sleep, startFleet, until, type Fleet, type FleetNodeProcess } from './helpers/fleet.ts';
import { connectViewer, type NodeViewer } from './helpers/webrtc.ts';

/** The node's own STUN server, as a fleet in several regions would give each node its own. Nothing listens there: host candidates still connect on loopback. */
const NODE_ICE = 'stun:127.0.0.1:9';
const SIZE = 64;

let redis: RedisServer;
let fleet: Fleet;
let node: FleetNodeProcess;
const viewers: NodeViewer[] = [];

beforeAll(async () => {
  redis = await startRedis();
  fleet = await startFleet(redis.url, { leaseMs: 3000, stallMs: 1000 });
  node = await fleet.startNode({ args: ['--ice-server', NODE_ICE, '--model-option', `size=${SIZE}`] }).ready();
}, 60_000);

afterAll(async () => {
  for (const v of viewers.splice(0)) v.close();
  await fleet?.close();
  await redis?.stop();
});

const metricsOf = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();
const gauge = (text: string, name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** How many luma samples differ clearly between two I420 frames. */
const lumaDiff = (a: Uint8Array, b: Uint8Array, n: number): number => {
  let d = 0;
  for (let i = 0; i < n; i++) if (Math.abs(a[i]! - b[i]!) > 16) d++;
  return d;
};

/** The UDP port of the remote end of the viewer's selected candidate pair: where its media comes from. */
async function remoteMediaPort(v: NodeViewer): Promise<number> {
  const report = await v.pc.getStats();
  const pair = [...report.values()].find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
  const remote = pair && report.get(String(pair.remoteCandidateId));
  if (!remote || remote.protocol !== 'udp') throw new Error(`no selected UDP candidate pair: ${JSON.stringify(pair)}`);
  return Number(remote.port);
}

/** Which of `pids` holds a UDP socket bound to `port` (Linux: /proc/net/udp{,6} inodes, matched against each process's fds). */
function udpOwner(port: number, pids: readonly number[]): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
    }
  }
  return pids.filter((pid) =>
    readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false; // an fd closed while we looked
      }
    }),
  );
}

describe('fleet: WebRTC media from the node straight to the client', { timeout: 60_000 }, () => {
  it('rides through the gateway, negotiates with the node it was handed, and decodes the node\'s changing frames', async () => {
    const ride = fleet.client();
    let socketFrames = 0;
    ride.onFrame(() => socketFrames++);
    const session = await ride.session(15_000);
    expect(session.node).toBe(node.id);
    expect(session.url).toBe(node.url);
    const onNode = ride.node!;
    await until('Socket.IO frames before the switch', () => socketFrames >= 3);

    // The node hands out its own ICE servers (the gateway knows nothing of WebRTC).
    const cfg = (await onNode.request('webrtc:config', {})) as Result<WebRtcConfig>;
    expect(cfg).toMatchObject({ ok: true, available: true, iceServers: [{ urls: NODE_ICE }] });

    const v = await connectViewer(onNode);
    viewers.push(v);
    await onNode.attach({ encoding: 'webrtc' });
    await until('20 frames decoded from the node', () => v.frames >= 20, 20_000);
    const first = v.last!;
    expect([first.width, first.height]).toEqual([SIZE, SIZE]);
    expect(new Set(first.data.subarray(0, SIZE * SIZE)).size, 'distinct luma levels').toBeGreaterThan(4);
    const seen = v.frames;
    await until('more frames', () => v.frames >= seen + 20, 20_000);
    expect(lumaDiff(first.data, v.last!.data, SIZE * SIZE), 'pixels that changed').toBeGreaterThan(10);

    // The stream moved to the track: no more Socket.IO frames on the node connection.
    await sleep(300);
    const after = socketFrames;
    await sleep(700);
    expect(socketFrames - after, 'Socket.IO frames after attaching with webrtc').toBe(0);

    // The node's own peer sends the media: its per-peer figures in the node's /metrics.
    await until('the node reports the peer sending', async () => {
      const text = await metricsOf(node.url);
      return gauge(text, 'framehost_webrtc_peers') === 1 && gauge(text, `framehost_webrtc_bitrate_bps{peer="${v.peerId}"}`) > 0;
    }, 15_000);
    // The packets come from the node's process: the remote end of the selected candidate pair is
    // a UDP socket the node holds, not this process (where the gateway runs).
    const port = await remoteMediaPort(v);
    expect(udpOwner(port, [node.child.proc.pid!, process.pid]), `owner of UDP port ${port}`).toEqual([node.child.proc.pid]);
    // And the gateway has no peer of any kind (it serves no WebRTC at all).
    expect(await metricsOf(fleet.gateway.url)).not.toMatch(/framehost_webrtc_/);

    // The session still belongs to the ride: a command through the FleetClient is taken.
    await ride.command('stamp', { x: 10, y: 10 });
    await ride.stop();
    expect((await ride.ended(10_000)).reason).toBe('stopped');
    // The ride's end closes the node connection, and with it the node's peer.
    await until('the node closed the peer', async () => gauge(await metricsOf(node.url), 'framehost_webrtc_peers') === 0, 10_000);
    const done = await node.line('job.completed', (l) => l.fleet === 'job.completed' && l.jobId === session.jobId);
    expect(done.reason).toBe('stopped');
  });

  it('a raw client following the assignment offers first and starts with { ticket, encoding: webrtc }', async () => {
    const gw: Socket<GatewayServerToClient, GatewayClientToServer> = ioClient(fleet.gateway.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    let onNode: FramehostClient | null = null;
    try {
      const assigned = new Promise<Assignment>((resolve) => gw.once('assigned', resolve));
      expect((await gw.timeout(5000).emitWithAck('ride:request', {})).ok).toBe(true);
      const a = await assigned;
      expect(a.url).toBe(node.url);
      onNode = await FramehostClient.connect(a.url, { timeoutMs: 5000 });
      let socketFrames = 0;
      onNode.onFrame(() => socketFrames++);
      const v = await connectViewer(onNode);
      viewers.push(v);
      await onNode.start({ ticket: a.ticket, encoding: 'webrtc' });
      await until('frames decoded from the node', () => v.frames >= 10, 20_000);
      expect(socketFrames, 'Socket.IO frames (the stream is the track from the start)').toBe(0);
      await onNode.stop();
    } finally {
      onNode?.close();
      gw.close();
    }
  });
});
