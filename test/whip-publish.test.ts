/**
 * `--publish whip+http://…`: a framehost server on the room sender publishes its session to a
 * WHIP endpoint written here (node:http, and a node-datachannel peer on 127.0.0.1 that answers
 * with a receive-only VP8 track and counts what arrives), the stand-in for LiveKit's or
 * MediaMTX's WHIP ingest: the POST carries the offer and the bearer token, frames arrive and
 * change, the room encodes each frame once, /metrics says `publishing`, and the server's shutdown
 * DELETEs the session's resource (given relative in `Location`). What the log says when the
 * endpoint refuses (403) or is not there.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import nodeDataChannel from 'node-datachannel';
import type { Track } from 'node-datachannel';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_OUTLET } from '../src/media/outlet.ts';
import { DEFAULT_ROOM, MediaRoom } from '../src/media/room.ts';
import { WhipPublisher, whipPublisherDefaults } from '../src/media/whip/publisher.ts';
import { parseWhipTarget, type WhipTarget } from '../src/media/whip/target.ts';
import { eventually, freePort } from './helpers/janus.ts';
import { startServer, type Harness } from './helpers/server.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
}

/** One WHIP session at the endpoint: its peer, and what reached its receive-only track. */
class Ingest {
  readonly pc = new nodeDataChannel.PeerConnection('whip-endpoint', { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false, disableAutoNegotiation: true });
  packets = 0;
  frames = 0;
  /** Hashes of each frame's VP8 payload: a picture that moves makes frames that differ. */
  readonly distinct = new Set<string>();
  private current = createHash('sha1');
  /**
   * The receiving track, held for the session's life: node-datachannel closes a Track whose
   * wrapper is garbage-collected and drops its onMessage (the endpoint then counts nothing).
   */
  private track: Track | null = null;

  /** Apply the offer, add the receiving track, and answer with the candidates gathered. */
  async answer(offer: string): Promise<string> {
    this.pc.setRemoteDescription(offer, 'offer');
    const media = new nodeDataChannel.Video('0', 'RecvOnly');
    media.addVP8Codec(96);
    const track = (this.track = this.pc.addTrack(media));
    // Receiver reports and the like, as an SFU sends them.
    track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
    track.onMessage((packet) => this.take(packet));
    const gathered = new Promise<void>((resolve) => this.pc.onGatheringStateChange((s) => s === 'complete' && resolve()));
    this.pc.setLocalDescription('answer');
    if (this.pc.gatheringState() !== 'complete') await gathered;
    return this.pc.localDescription()!.sdp;
  }

  private take(packet: Buffer): void {
    const pt = packet[1]! & 0x7f;
    if (pt >= 64 && pt < 96) return; // RTCP (types 192-223 read as marker + 64-95)
    this.packets++;
    let offset = 12 + 4 * (packet[0]! & 0x0f);
    if (packet[0]! & 0x10) offset += 4 + 4 * packet.readUInt16BE(offset + 2); // the header extension (playout delay)
    this.current.update(packet.subarray(offset));
    if (packet[1]! & 0x80) {
      // The marker ends a frame.
      this.frames++;
      this.distinct.add(this.current.digest('hex'));
      this.current = createHash('sha1');
    }
  }

  close(): void {
    this.track?.close();
    this.pc.close();
  }
}

/** A minimal WHIP endpoint at /live/whip: 201 with the answer and a relative Location, or `refuse`'s status. */
class WhipEndpoint {
  readonly seen: Seen[] = [];
  readonly sessions = new Map<string, Ingest>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly refuse: number | null,
  ) {}

  static async start(refuse: number | null = null): Promise<WhipEndpoint> {
    let endpoint: WhipEndpoint | null = null;
    const server = createServer((req, res) => void endpoint!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = new WhipEndpoint(server, (server.address() as AddressInfo).port, refuse);
    cleanups.push(() => endpoint.stop());
    return endpoint;
  }

  get url(): string {
    return `whip+http://127.0.0.1:${this.port}/live/whip`;
  }

  get frames(): number {
    return [...this.sessions.values()].reduce((n, s) => n + s.frames, 0);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], authorization: req.headers.authorization });
    if (req.method === 'DELETE' && req.url?.startsWith('/live/resource/')) {
      const id = req.url.slice('/live/resource/'.length);
      this.sessions.get(id)?.close();
      res.writeHead(this.sessions.has(id) ? 200 : 404).end();
      return;
    }
    if (req.method !== 'POST' || req.url !== '/live/whip') return void res.writeHead(405).end();
    if (this.refuse !== null) return void res.writeHead(this.refuse, { 'content-type': 'text/plain' }).end('forbidden: token not valid for this stream\n(more detail)');
    const ingest = new Ingest();
    const id = randomUUID();
    this.sessions.set(id, ingest);
    const answer = await ingest.answer(Buffer.concat(chunks).toString());
    // Relative, as MediaMTX gives it: the publisher reads it against the endpoint's URL.
    res.writeHead(201, { 'content-type': 'application/sdp', location: `resource/${id}` }).end(answer);
  }

  async stop(): Promise<void> {
    for (const s of this.sessions.values()) s.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A pino destination keeping each line, parsed. */
function lineSink(lines: Record<string, unknown>[]): Writable {
  return new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
}

function whipTarget(url: string, token: string | null): WhipTarget {
  const target = parseWhipTarget(url, token);
  if (typeof target === 'string') throw new Error(target);
  return target;
}

/** One sample of /metrics, by its full series name (`name{labels}`); NaN when absent. */
async function sample(h: Harness, series: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

describe('publishing to a WHIP endpoint', { timeout: 60_000 }, () => {
  it("the endpoint gets the offer with the token and the session's changing frames, encoded once; shutdown DELETEs the resource", async () => {
    const endpoint = await WhipEndpoint.start();
    const publish = whipTarget(endpoint.url, 'test-token.1');
    const lines: Record<string, unknown>[] = [];
    const h = await startServer({ modelOptions: { size: 128, fps: 30 }, logger: pino(lineSink(lines)) }, { webrtc: { publish, iceHostAddresses: ['127.0.0.1'] } });
    const publishLog = (): string => JSON.stringify(lines.filter((l) => l.component === 'publish'));
    cleanups.push(() => h.close());
    await h.rt.ready();
    const owner = await h.client();
    await owner.start();

    await eventually(() => `60 frames at the endpoint (got ${endpoint.frames}; requests ${JSON.stringify(endpoint.seen)})`, async () => endpoint.frames >= 60, 20_000);
    const post = endpoint.seen[0]!;
    expect(post).toEqual({ method: 'POST', url: '/live/whip', contentType: 'application/sdp', authorization: 'Bearer test-token.1' });
    // Seen in 1 to 4 runs of 10 on the 2-core test machine: the first attempt's answer fails in
    // libdatachannel ("Got a remote candidate without ICE transport": our peer reads `closed` by
    // then, cause not found yet), the publisher retries after 1 s (as the chart says) and the
    // next session carries the stream. So: at most two retries, each counted, and the session
    // that carried it.
    const posts = endpoint.seen.filter((s) => s.method === 'POST').length;
    expect(posts, publishLog()).toBe(endpoint.sessions.size);
    expect(posts, publishLog()).toBeLessThanOrEqual(3);
    expect(await sample(h, 'framehost_publisher_reconnects_total')).toBe(posts - 1);
    const [id, ingest] = [...endpoint.sessions.entries()].at(-1)!;
    const received = ingest.frames; // before the encodes are read: they only grow
    expect(ingest.packets).toBeGreaterThanOrEqual(ingest.frames);
    // The picture moves: nearly every frame differs from every other.
    expect(ingest.distinct.size, `${ingest.distinct.size} distinct of ${ingest.frames}`).toBeGreaterThan(ingest.frames * 0.8);
    expect(await sample(h, 'framehost_publisher_state{state="publishing"}')).toBe(1);
    // Publishing is one more outlet of the room's encode: no more encodes than frames made.
    const encoded = await sample(h, 'framehost_webrtc_room_frames_encoded');
    const generated = await sample(h, 'framehost_frames_generated_total');
    expect(encoded, `encoded ${encoded} of ${generated} generated`).toBeLessThanOrEqual(generated);
    expect(encoded).toBeGreaterThanOrEqual(received);

    await h.close();
    expect(endpoint.seen.filter((s) => s.method === 'POST')).toHaveLength(posts); // no new attempt at shutdown
    const deleted = endpoint.seen.findLast((s) => s.method === 'DELETE');
    expect(deleted).toEqual({ method: 'DELETE', url: `/live/resource/${id}`, contentType: undefined, authorization: 'Bearer test-token.1' });
  });
});

/** A publisher on a room of its own, logging into `lines` (parsed JSON). */
function publisherTo(target: WhipTarget, lines: Record<string, unknown>[]): WhipPublisher {
  const sink = lineSink(lines);
  const outlet = { ...DEFAULT_OUTLET, bindAddress: '127.0.0.1' };
  const room = new MediaRoom({ ...DEFAULT_ROOM, outlet });
  const publisher = new WhipPublisher(room, whipPublisherDefaults(target, outlet), pino(sink));
  cleanups.push(async () => (await publisher.stop(), room.close()));
  return publisher;
}

const retries = (lines: Record<string, unknown>[]): { code?: string; message?: string }[] => lines.filter((l) => l.msg === 'WHIP publication lost or refused; connecting again').map((l) => l.err as { code?: string; message?: string });

describe('publishing by WHIP: what the log says when it cannot', { timeout: 60_000 }, () => {
  it("an endpoint that answers 403: sfu_refused with the status and the body's first line, and it tries again", async () => {
    const endpoint = await WhipEndpoint.start(403);
    const lines: Record<string, unknown>[] = [];
    const publisher = publisherTo(whipTarget(endpoint.url, null), lines);
    await eventually('two refusals', async () => retries(lines).length >= 2, 10_000);
    expect(retries(lines)[0]).toMatchObject({ code: 'sfu_refused', message: 'WHIP POST: 403 forbidden: token not valid for this stream' });
    expect(endpoint.seen.filter((s) => s.method === 'POST').length).toBeGreaterThanOrEqual(2);
    expect(endpoint.seen[0]?.authorization).toBeUndefined(); // no token given, none sent
    expect(publisher.state).toMatch(/connecting|retrying/);
    expect(publisher.reconnects).toBeGreaterThanOrEqual(2);
  });

  it('nothing listening: sfu_unreachable, and it keeps trying', async () => {
    const lines: Record<string, unknown>[] = [];
    const publisher = publisherTo(whipTarget(`whip+http://127.0.0.1:${await freePort()}/w`, null), lines);
    await eventually('two retries', async () => retries(lines).length >= 2, 10_000);
    expect(retries(lines)[0]?.code).toBe('sfu_unreachable');
    expect(retries(lines)[0]?.message).toMatch(/^the WHIP endpoint did not answer at whip\+http:\/\/127\.0\.0\.1:\d+\/w: /);
    expect(publisher.state).toMatch(/connecting|retrying/);
  });
});
