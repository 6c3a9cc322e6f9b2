/**
 * WebRTC media over loopback, for each sender: a real framehost server (runtime, worker, ONNX
 * Runtime) with `webrtc.sender` set explicitly (`wrtc`: libwebrtc, an encoder per peer; `room`:
 * src/media/, one encode for all, node-datachannel), and real libwebrtc viewers playing the page's
 * part over real Socket.IO connections. The viewers run in a child process (test/helpers/viewers.ts)
 * so that this process never loads wrtc next to node-datachannel. test/webrtc.test.ts runs this
 * suite on `wrtc`, test/webrtc-room-sender.test.ts on `room` (a file each: one process per sender).
 * The browser's side is in test/browser-webrtc.test.ts.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { io as rawIo, type Socket } from 'socket.io-client';
import { until } from './helpers/runtime.ts';
import { sleep, startServer, type Harness } from './helpers/server.ts';
import { fail } from '../src/errors.ts';
import { WrtcViewers, type RemoteViewer } from './helpers/viewers.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import type { WebRtcOptions } from '../src/transport/webrtc/options.ts';
import { FramehostClient } from '../src/client/client.ts';
import { scaledBitrateKbps } from '../src/media/bitrate.ts';

export type Sender = WebRtcOptions['sender'];

export function webrtcSuite(sender: Sender): void {
  const harnesses: Harness[] = [];
  const raws: Socket[] = [];
  let rig!: WrtcViewers;
  beforeAll(() => {
    rig = new WrtcViewers();
  });
  afterAll(() => rig.close());
  /** A viewer on `client`'s connection; those still open are closed after the test (rig.closeViewers). */
  const connectViewer = (client: FramehostClient, options: { camera?: boolean; inputTrack?: string } = {}): Promise<RemoteViewer> => rig.connect(client, options);
  async function server(transport: Partial<TransportOptions> = {}, runtime: Parameters<typeof startServer>[0] = { modelOptions: { size: 64, fps: 30 } }): Promise<Harness> {
    const h = await startServer(runtime, { ...transport, webrtc: { sender, ...transport.webrtc } });
    harnesses.push(h);
    await h.rt.ready();
    return h;
  }
  afterEach(async () => {
    await rig.closeViewers();
    for (const r of raws.splice(0)) r.close();
    await Promise.all(harnesses.splice(0).map((h) => h.close()));
  });
  describeMedia(sender, server, connectViewer);
  describeBadInput(sender, server, connectViewer, () => rig);
  describeSoak(server, connectViewer);
  describeViewers(server, connectViewer, raws);
  describeCamera(server, connectViewer);
}

type ServerFn = (transport?: Partial<TransportOptions>, runtime?: Parameters<typeof startServer>[0]) => Promise<Harness>;
type ConnectFn = (client: FramehostClient, options?: { camera?: boolean; inputTrack?: string }) => Promise<RemoteViewer>;
/** How many luma samples differ (by more than 16) between two I420 frames. */
const lumaDiff = (a: Uint8Array, b: Uint8Array, n: number): number => {
  let d = 0;
  for (let i = 0; i < n; i++) if (Math.abs(a[i]! - b[i]!) > 16) d++;
  return d;
};

const metricsText = async (h: Harness): Promise<string> => (await fetch(`${h.url}/metrics`)).text();
const peersOpen = async (h: Harness): Promise<number> => Number(/^framehost_webrtc_peers (\d+)$/m.exec(await metricsText(h))?.[1] ?? NaN);

async function poll(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Answer = { ok: boolean; error?: { code: string; message: string } };
const code = (r: Answer): string => (r.ok ? 'ok' : r.error!.code);

function describeMedia(sender: Sender, server: ServerFn, connectViewer: ConnectFn): void {
  describe(`server → viewer video track (${sender})`, { timeout: 60_000 }, () => {
    it('negotiates over the Socket.IO connection and delivers changing, non-blank frames', async () => {
      const h = await server();
      const owner = await h.client();
      const cfg = await owner.request('webrtc:config', {});
      expect(cfg).toMatchObject({ ok: true, available: true, codec: 'VP8' });
      const v = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('20 decoded frames', () => v.frames >= 20, 20_000);
      const first = (await v.last())!;
      expect([first.width, first.height]).toEqual([64, 64]);
      const luma = first.data.subarray(0, 64 * 64);
      expect(new Set(luma).size, 'distinct luma levels').toBeGreaterThan(4);
      const seen = v.frames;
      await until('more frames', () => v.frames >= seen + 20, 20_000);
      expect(lumaDiff(first.data, (await v.last())!.data, 64 * 64), 'pixels that changed').toBeGreaterThan(10);
      expect(h.server.io.sockets.sockets.size).toBe(1);
      // The sender's figures reach /metrics, per peer (read every 2 s).
      const gauge = (text: string, name: string): number => Number(new RegExp(`^${name}\\{peer="${v.peerId}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      await poll('per-peer stats in /metrics', async () => {
        const text = await metricsText(h);
        return gauge(text, 'framehost_webrtc_fps') > 0 && gauge(text, 'framehost_webrtc_bitrate_bps') > 0 && gauge(text, 'framehost_webrtc_packets_lost') >= 0;
      });
      await v.close();
      owner.close();
      await poll('the peer gone from /metrics', async () => !(await metricsText(h)).includes(v.peerId));
    });
  });

  describe(`the stream gate (a fleet node's lease) on a WebRTC track (${sender})`, { timeout: 60_000 }, () => {
    it('holds back a WebRTC track too: closed, the viewer decodes no new frame; open again, they flow', async () => {
      let open = true;
      const h = await server({ gate: () => (open ? { ok: true } : fail('lease_lost', 'test')) });
      const c = await h.client();
      const v = await connectViewer(c);
      await c.start({ encoding: 'webrtc' });
      await until('decoded frames', () => v.frames >= 5, 20_000);
      open = false;
      // Frames encoded before the gate closed may still be in the jitter buffer or on the wire.
      await sleep(500);
      const shut = v.frames;
      const made = h.rt.status().session!.frames;
      await sleep(1000); // 30 frames' worth of the model's time
      expect(v.frames, 'frames decoded while the gate was closed').toBe(shut);
      expect(h.rt.status().session!.frames - made, 'frames the model made meanwhile (held back, not absent)').toBeGreaterThan(10);
      open = true;
      await until('decoded frames again', () => v.frames >= shut + 5, 20_000);
    });
  });

  describe(`default bitrate bound (${sender})`, { timeout: 60_000 }, () => {
    it("follows the session's frame size (webrtc:config and each new offer), and the flag replaces it", async () => {
      const h = await server();
      const owner = await h.client();
      const max = async (c: FramehostClient): Promise<unknown> => ((await c.request('webrtc:config', {})) as { maxBitrateKbps?: number }).maxBitrateKbps;
      expect(await max(owner)).toBe(1000); // no frame yet: the 256² figure
      const v = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('frames', () => v.frames >= 5, 20_000);
      expect(await max(owner)).toBe(scaledBitrateKbps(64 * 64)); // the test model's 64² frames: 160
      const fixed = await server({ webrtc: { maxBitrateKbps: 900 } });
      expect(await max(await fixed.client())).toBe(900);
    });
  });

  describe(`loopback-only ICE (iceHostAddresses, every test server has it; ${sender})`, { timeout: 60_000 }, () => {
    it("the server signals only its 127.0.0.1 host candidates, and the selected pair's server end is that candidate", async () => {
      const h = await server();
      const owner = await h.client();
      const signalled: string[] = [];
      owner.on('webrtc:candidate', ({ candidate }) => candidate && signalled.push(candidate.candidate));
      const v = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('frames', () => v.frames >= 5, 20_000);
      // The server's candidates: trickled (wrtc) or in its answer (the room gathers before answering).
      const inAnswer = v.answer.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:')).map((l) => l.slice(2));
      const all = [...signalled, ...inAnswer];
      // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
      const hosts = all.map((c) => c.split(' ')).filter((f) => f[7] === 'host').map((f) => f[4]);
      expect(hosts.length, all.join('\n')).toBeGreaterThan(0);
      expect(new Set(hosts)).toEqual(new Set(['127.0.0.1']));
      // The pair the media uses, as the viewer's libwebrtc reports it: the server's end is its
      // signalled 127.0.0.1 host candidate (not one learned from a check from another socket).
      // The viewer's end is the viewer's own choice: libwebrtc checks from every local socket,
      // whatever it signals, and wrtc 0.10 has no setting to stop that (docs/media.md, Configuration).
      const stats = await v.stats();
      const transport = stats.find((s) => s.type === 'transport');
      const pair = stats.find((s) => s.type === 'candidate-pair' && s.id === transport?.selectedCandidatePairId);
      expect(pair, 'a selected candidate pair').toBeDefined();
      const serverEnd = stats.find((s) => s.id === pair!.remoteCandidateId);
      expect(serverEnd).toMatchObject({ candidateType: 'host', address: '127.0.0.1' });
    });
  });
}

function describeBadInput(sender: Sender, server: ServerFn, connectViewer: ConnectFn, rig: () => WrtcViewers): void {
  describe(`bad input: each refusal is coded and changes nothing else (${sender})`, { timeout: 90_000 }, () => {
    it('malformed SDP, unknown peers, bad candidates, floods and storms', async () => {
      const h = await server({ webrtc: { offerBurst: 100 } }); // the flood limit has its own test
      const owner = await h.client();
      const v = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('frames', () => v.frames >= 5, 20_000);
      const other = await h.client();
      const send = (c: typeof owner, event: string, payload: unknown): Promise<Answer> => c.request(event as 'webrtc:offer', payload as never) as Promise<Answer>;
      const recvSdp = await rig().sdp('recvonly');
      const sendOnlySdp = await rig().sdp('sendonly');

      const matrix: [string, typeof owner, string, unknown, string][] = [
        ['offer that is not an object', other, 'webrtc:offer', 'v=0', 'bad_request'],
        ['sdp that is not a string', other, 'webrtc:offer', { sdp: 42 }, 'bad_sdp'],
        ['sdp that is not an sdp', other, 'webrtc:offer', { sdp: 'hello' }, 'bad_sdp'],
        ['sdp over the size limit', other, 'webrtc:offer', { sdp: `v=0\r\n${'a=x\r\n'.repeat(10_000)}` }, 'bad_sdp'],
        ['sdp that libwebrtc cannot apply', other, 'webrtc:offer', { sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n' }, 'bad_sdp'],
        ['offer with nothing to receive on', other, 'webrtc:offer', { sdp: sendOnlySdp }, 'bad_sdp'],
        ['offer for an unknown input track', other, 'webrtc:offer', { sdp: recvSdp, inputTrack: 'nope' }, 'unknown_track'],
        ['renegotiation of an unknown peer', other, 'webrtc:offer', { sdp: recvSdp, peerId: 'nope' }, 'unknown_peer'],
        ["renegotiation of another connection's peer", other, 'webrtc:offer', { sdp: recvSdp, peerId: v.peerId }, 'unknown_peer'],
        ['a second peer on one connection', owner, 'webrtc:offer', { sdp: recvSdp }, 'too_many_peers'],
        ['bad renegotiation sdp', owner, 'webrtc:offer', { sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n', peerId: v.peerId }, 'bad_sdp'],
        ['candidate for an unknown peer', other, 'webrtc:candidate', { peerId: 'nope', candidate: null }, 'unknown_peer'],
        ["candidate for another connection's peer", other, 'webrtc:candidate', { peerId: v.peerId, candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } }, 'unknown_peer'],
        ['candidate of the wrong shape', owner, 'webrtc:candidate', { peerId: v.peerId, candidate: { candidate: 7 } }, 'bad_request'],
        ['candidate libwebrtc refuses', owner, 'webrtc:candidate', { peerId: v.peerId, candidate: { candidate: 'candidate:garbage', sdpMid: '0', sdpMLineIndex: 0 } }, 'bad_request'],
        ['close of an unknown peer', other, 'webrtc:close', { peerId: v.peerId }, 'unknown_peer'],
        ['attach with webrtc and no peer', other, 'stream:attach', { encoding: 'webrtc' }, 'unknown_peer'],
        ['attach with an unknown encoding', other, 'stream:attach', { encoding: 'h264' }, 'bad_request'],
      ];
      const got: Record<string, string> = {};
      for (const [what, client, event, payload] of matrix) got[what] = code(await send(client, event, payload));
      expect(got).toEqual(Object.fromEntries(matrix.map(([what, , , , c]) => [what, c])));

      // Start with webrtc and no peer: refused before the runtime is asked.
      await owner.stop();
      await until('idle', () => h.rt.phase() === 'idle', 10_000);
      const intruder = await h.client();
      expect(code((await intruder.request('session:start', { encoding: 'webrtc' })) as Answer)).toBe('unknown_peer');
      expect(h.rt.phase()).toBe('idle');
      await owner.start({ encoding: 'webrtc' });

      // Nothing else changed: one peer, still delivering, and the refusals are counted.
      const before = v.frames;
      await until('frames after the matrix', () => v.frames >= before + 10, 20_000);
      expect(await peersOpen(h)).toBe(1);
      expect(await metricsText(h)).toMatch(/framehost_command_errors_total\{code="bad_sdp"\} [1-9]/);
    });

    it('a refused new offer creates no peer: peers_opened_total is unchanged', async () => {
      const h = await server();
      const client = await h.client();
      // A send-only offer: the browser would only send, so there is nothing for the server to send on.
      const sendOnlySdp = await rig().sdp('sendonly');
      const opened = async (): Promise<number> => Number(/^framehost_webrtc_peers_opened_total (\d+)$/m.exec(await metricsText(h))?.[1] ?? NaN);
      expect(await opened()).toBe(0);
      // Refused before and after the sender sees the offer: neither counts as a peer.
      const refusals = [sendOnlySdp, 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n'];
      for (const sdp of refusals) expect(code((await client.request('webrtc:offer', { sdp })) as Answer)).toBe('bad_sdp');
      expect(await opened()).toBe(0);
      expect(await peersOpen(h)).toBe(0);
      // A good offer on the same connection is the first peer opened.
      await connectViewer(client);
      expect(await opened()).toBe(1);
    });

    it('an offer flood and a renegotiation storm are rate limited; the peer goes on', async () => {
      const h = await server();
      const owner = await h.client();
      const v = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('frames', () => v.frames >= 5, 20_000);
      // Renegotiation storm: 20 offers for the live peer at once (the one it has, resent). The
      // room does not renegotiate: those not rate limited are bad_sdp there.
      const sdp = v.offer;
      const storm = await Promise.all(Array.from({ length: 20 }, () => owner.request('webrtc:offer', { sdp, peerId: v.peerId }) as Promise<Answer>));
      const codes = storm.map(code);
      expect(codes.filter((c) => c === 'rate_limited').length).toBeGreaterThanOrEqual(10);
      expect(codes.every((c) => c === 'ok' || c === 'rate_limited' || c === 'bad_sdp'), codes.join()).toBe(true);
      // Offer flood from another connection: new peers, as fast as it can.
      const flooder = await h.client();
      const flood = await Promise.all(Array.from({ length: 20 }, () => flooder.request('webrtc:offer', { sdp: 'v=0' }) as Promise<Answer>));
      expect(flood.map(code).filter((c) => c === 'rate_limited').length).toBeGreaterThanOrEqual(10);
      const configs = await Promise.all(Array.from({ length: 40 }, () => flooder.request('webrtc:config', {}) as Promise<Answer>));
      expect(configs.map(code).filter((c) => c === 'rate_limited').length).toBeGreaterThanOrEqual(10);
      const before = v.frames;
      await until('frames after the storm', () => v.frames >= before + 10, 20_000);
      expect(await peersOpen(h)).toBe(1);
    });

    it('the server-wide peer limit answers too_many_peers', async () => {
      const h = await server({ webrtc: { maxPeers: 2 } });
      for (let i = 0; i < 2; i++) await connectViewer(await h.client());
      await expect(connectViewer(await h.client())).rejects.toThrow(/too_many_peers/);
      expect(await peersOpen(h)).toBe(2);
    });
  });
}

/**
 * The garbage collector, for memory figures that mean retained memory (vitest's workers do not
 * run with --expose-gc; V8 hands `gc` to a new context once the flag is set).
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function describeSoak(server: ServerFn, connectViewer: ConnectFn): void {
  describe('peers of viewers that leave are closed', { timeout: 300_000 }, () => {
    it(`soak: ${Number(process.env.SOAK_PEERS ?? 100)} viewers join and leave; peers, handles and RSS stay flat`, async () => {
      const rounds = Number(process.env.SOAK_PEERS ?? 100);
      // The sender fills its pools (threads, buffers) over the first few dozen peers (measured on
      // wrtc: RSS rises ~20 MB over 60 joins, then stays): the baseline is taken after that.
      const warm = Math.min(50, Math.floor(rounds / 2));
      const h = await server();
      const owner = await h.client();
      await owner.start();
      let handlesAtWarm = 0;
      let rssAtWarm = 0;
      for (let i = 1; i <= rounds; i++) {
        // Not h.client(): the harness keeps every client it made until the end (to close it).
        const c = await FramehostClient.connect(h.url, { reconnection: false });
        const v = await connectViewer(c);
        await c.attach({ encoding: 'webrtc' });
        await until(`round ${i}: a frame`, () => v.frames >= 1, 20_000);
        // Half leave by closing the peer, half by going away.
        if (i % 2 === 0) expect((await c.request('webrtc:close', { peerId: v.peerId })).ok).toBe(true);
        await v.close();
        c.close();
        await until(`round ${i}: connection gone`, () => h.server.io.sockets.sockets.size === 1, 10_000);
        await poll(`round ${i}: no peer left`, async () => (await peersOpen(h)) === 0);
        if (i % 25 === 0) collectGarbage();
        if (i % 100 === 0) {
          const m = process.memoryUsage();
          console.log(`soak round ${i}: RSS ${(m.rss / 2 ** 20).toFixed(1)} MB, heap ${(m.heapUsed / 2 ** 20).toFixed(1)} MB, handles ${process.getActiveResourcesInfo().length}`);
        }
        if (i === warm) {
          collectGarbage();
          handlesAtWarm = process.getActiveResourcesInfo().length;
          rssAtWarm = process.memoryUsage().rss;
        }
      }
      expect(await peersOpen(h)).toBe(0);
      collectGarbage();
      const handles = process.getActiveResourcesInfo().length;
      const rssGrowthMb = (process.memoryUsage().rss - rssAtWarm) / 2 ** 20;
      console.log(`soak: ${rounds} joins/leaves (the server in this process, the viewers in a child), handles ${handlesAtWarm} → ${handles}, RSS ${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(1)} MB after round ${warm}`);
      expect(handles - handlesAtWarm).toBeLessThanOrEqual(5);
      expect(rssGrowthMb).toBeLessThan(Math.max(10, (rounds - warm) * 0.02));
      // The owner's session was never touched.
      expect(h.rt.phase()).toBe('running');
    });
  });
}

function describeViewers(server: ServerFn, connectViewer: ConnectFn, raws: Socket[]): void {
  describe('viewers: switch and broadcast', { timeout: 90_000 }, () => {
    it('switch (default): a second WebRTC viewer takes the stream; the first is told and gets no more frames', async () => {
      const h = await server();
      const owner = await h.client();
      const a = await connectViewer(owner);
      await owner.start({ encoding: 'webrtc' });
      await until('frames to the owner', () => a.frames >= 5, 20_000);
      const watcher = await h.client();
      const b = await connectViewer(watcher);
      const detached = new Promise((resolve) => owner.on('stream:detached', resolve));
      await watcher.attach({ encoding: 'webrtc' });
      await detached;
      await until('frames to the watcher', () => b.frames >= 10, 20_000);
      const frozen = a.frames;
      const seen = b.frames;
      await until('more frames to the watcher', () => b.frames >= seen + 15, 20_000);
      expect(a.frames - frozen, 'frames to the superseded viewer').toBeLessThanOrEqual(2); // at most what was in flight
      // Control stayed with the owner.
      await expect(owner.command('clear')).resolves.toMatchObject({ requestId: expect.any(String) });
      await expect(watcher.command('clear')).rejects.toMatchObject({ code: 'not_owner' });
    });

    it('broadcast: spectators watch at once, a stalled one costs the others nothing, the limit is coded', async () => {
      const h = await server({ viewers: 'broadcast', maxViewers: 4 });
      const owner = await h.client();
      const spectators: RemoteViewer[] = [];
      spectators.push(await connectViewer(owner));
      await owner.start({ encoding: 'webrtc' });
      for (let i = 0; i < 2; i++) {
        const c = await h.client();
        const v = await connectViewer(c);
        await c.attach({ encoding: 'webrtc' });
        spectators.push(v);
      }
      // The fourth never acknowledges its Socket.IO frames: it is as slow as a viewer can be.
      const stalled = rawIo(h.url, { transports: ['websocket'], reconnection: false, forceNew: true });
      raws.push(stalled);
      let stalledFrames = 0;
      stalled.on('frame', () => stalledFrames++); // never calls the ack: its window stays full
      await stalled.timeout(5000).emitWithAck('stream:attach', { encoding: 'raw', flow: 'ack' });
      // A fifth is over the limit.
      const late = await h.client();
      expect(code((await late.request('stream:attach', { encoding: 'raw' })) as Answer)).toBe('too_many_viewers');

      await until('every spectator has frames', () => spectators.every((v) => v.frames >= 5), 20_000);
      let generated = 0;
      const off = h.rt.on('frame', (f) => (generated += f.count));
      const start = spectators.map((v) => v.frames);
      await until('60 frames generated', () => generated >= 60, 20_000);
      off();
      const got = spectators.map((v, i) => v.frames - start[i]!);
      // Loose on purpose (a loaded machine): each spectator sees most of the frames made meanwhile.
      for (const n of got) expect(n, `frames per spectator of ${generated} generated: ${got.join(', ')}`).toBeGreaterThan(generated * 0.5);
      expect(stalledFrames, 'the stalled viewer got its window and no more').toBeLessThanOrEqual(2); // FRAME_ACK_WINDOW
      // The end reaches the spectators too.
      const ended = new Promise((resolve) => stalled.on('session:ended', resolve));
      await owner.stop();
      await ended;
    });
  });
}

function describeCamera(server: ServerFn, connectViewer: ConnectFn): void {
  describe('browser → server video track', { timeout: 60_000 }, () => {
    it("feeds the model's input track from the owner's peer; a watcher's track is refused with not_owner", async () => {
      const h = await server({}, { model: 'video-filter', modelOptions: {} });
      const inputs = (): number => h.rt.status().session?.inputs ?? 0;
      const owner = await h.client();
      await owner.start({ encoding: 'raw' });
      const watcher = await h.client();
      const rejected = new Promise<{ track: string; error: { code: string } }>((resolve) => watcher.on('input:rejected', resolve));
      // Each peer sends a 256² camera (test/helpers/wrtc-viewers.ts), as a page's would.
      await connectViewer(watcher, { camera: true, inputTrack: 'camera' });
      expect(await rejected).toMatchObject({ track: 'camera', error: { code: 'not_owner' } });
      expect(inputs()).toBe(0);
      await connectViewer(owner, { camera: true, inputTrack: 'camera' });
      await until('input frames taken', () => inputs() >= 10, 20_000);
      expect(h.rt.phase()).toBe('running');
    });
  });
}
