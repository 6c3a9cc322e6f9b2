/**
 * The viewer's camera over WebRTC on the encode-once sender (`webrtc.sender: 'room'`): a
 * node-datachannel peer plays the browser (nothing in this file loads wrtc, so it runs in the
 * test's own process). It negotiates a receive-only peer, then renegotiates it with `peerId` and
 * `inputTrack` to add a send-only VP8 section, as the page does when its camera goes on; VP8 made
 * by libvpx (src/media/vp8-encoder.ts) goes out in RTP (src/media/vp8-rtp.ts). The server decodes
 * it into the video filter's `camera` track: the model's output is the colour sent. A watcher's
 * camera is refused `not_owner`; a lost packet brings a PLI, rate-limited. Also the
 * depacketizer alone: frames, gaps, late packets, padding.
 */
import { afterEach, describe, expect, it } from 'vitest';
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import type { FramehostClient } from '../src/client/client.ts';
import type { Result } from '../src/errors.ts';
import { Vp8Encoder } from '../src/media/vp8-encoder.ts';
import { RtpWriter, vp8Payloads, asksForKeyframe, isRtcp } from '../src/media/vp8-rtp.ts';
import { Vp8Depacketizer } from '../src/media/vp8-depacketizer.ts';
import { until } from './helpers/runtime.ts';
import { recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const SIZE = 256;
const PT = 96;
const harnesses: Harness[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function gathered(pc: PeerConnection): Promise<string> {
  const done = new Promise<void>((resolve) => {
    pc.onGatheringStateChange((s) => s === 'complete' && resolve());
    setTimeout(resolve, 2000).unref();
  });
  pc.setLocalDescription('offer');
  if (pc.gatheringState() !== 'complete') await done;
  return pc.localDescription()!.sdp;
}

/** A flat RGBA picture of one colour. */
function flat(rgb: readonly [number, number, number]): Uint8Array {
  const data = new Uint8Array(SIZE * SIZE * 4);
  for (let i = 0; i < data.length; i += 4) data.set([...rgb, 255], i);
  return data;
}

interface Camera {
  pc: PeerConnection;
  peerId: string;
  /** Renegotiate with a send-only camera section; resolves once it is answered. */
  addCamera(): Promise<Result<{ peerId: string; sdp: string }>>;
  /** Frames sent, PLIs received. */
  readonly counts: { sent: number; plis: number };
  /** Drop the next packet (a loss the server must notice). */
  loseOne(): void;
  colour: [number, number, number];
  stop(): void;
}

/** A node-datachannel "browser": a receive-only peer first, then the camera by renegotiation. */
async function cameraPeer(client: FramehostClient): Promise<Camera> {
  const pc = new nodeDataChannel.PeerConnection('camera', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true, enableIceTcp: false });
  const recv = new nodeDataChannel.Video('0', 'RecvOnly');
  recv.addVP8Codec(PT);
  pc.addTrack(recv);
  const r = (await client.request('webrtc:offer', { sdp: await gathered(pc) })) as Result<{ peerId: string; sdp: string }>;
  if (!r.ok) throw new Error(`offer refused: ${r.error.code}: ${r.error.message}`);
  pc.setRemoteDescription(r.sdp, 'answer');
  const ssrc = 0x1234567;
  const rtp = new RtpWriter({ ssrc, payloadType: PT, playoutDelayId: null });
  const counts = { sent: 0, plis: 0 };
  let encoder: Vp8Encoder | null = null;
  let timer: NodeJS.Timeout | undefined;
  let lose = false;
  let track: Track | null = null;
  const cam: Camera = {
    pc,
    peerId: r.peerId,
    counts,
    colour: [200, 40, 90],
    loseOne: () => void (lose = true),
    async addCamera() {
      const media = new nodeDataChannel.Video('1', 'SendOnly');
      media.addVP8Codec(PT);
      media.addSSRC(ssrc, 'camera', 'camera', 'camera');
      track = pc.addTrack(media);
      track.onMessage((msg) => {
        if (isRtcp(msg) && asksForKeyframe(msg)) {
          counts.plis++;
          encoder?.requestKeyframe();
        }
      });
      const offer = await gathered(pc);
      const a = (await client.request('webrtc:offer', { sdp: offer, peerId: r.peerId, inputTrack: 'camera' })) as Result<{ peerId: string; sdp: string }>;
      if (!a.ok) return a;
      pc.setRemoteDescription(a.sdp, 'answer');
      encoder = new Vp8Encoder({ width: SIZE, height: SIZE, fps: 20, bitrateKbps: 500, gopFrames: 1000 });
      let n = 0;
      timer = setInterval(() => {
        if (!track?.isOpen() || !encoder) return;
        for (const e of encoder.encode(flat(cam.colour))) {
          const payloads = vp8Payloads(e.data, n & 0x7fff);
          payloads.forEach((p, i) => {
            const packet = rtp.packet(p, n * 4500, i === payloads.length - 1);
            if (lose) lose = false;
            else track!.sendMessageBinary(packet);
          });
        }
        n++;
        counts.sent++;
      }, 50);
      return a;
    },
    stop() {
      clearInterval(timer);
      encoder?.close();
      encoder = null;
      pc.close();
    },
  };
  closers.push(() => cam.stop());
  return cam;
}

async function filterServer(): Promise<Harness> {
  const h = await startServer({ model: 'video-filter', modelOptions: {} }, { webrtc: { sender: 'room' } });
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

const near = (d: Uint8Array, rgb: readonly number[], tolerance = 12): boolean => [0, 1, 2].every((c) => Math.abs(d[(128 * SIZE + 128) * 4 + c]! - rgb[c]!) <= tolerance);

describe("the room sender takes the owner's camera over WebRTC", { timeout: 60_000 }, () => {
  it('a renegotiation adds the camera; its decoded frames feed the model; a lost packet brings a PLI', async () => {
    const h = await filterServer();
    const inputs = (): number => h.rt.status().session?.inputs ?? 0;
    const owner = await h.client();
    await owner.start({ encoding: 'raw' });
    await owner.command('mode', { name: 'original' });
    const rec = recordFrames(owner);
    const cam = await cameraPeer(owner);
    const added = await cam.addCamera();
    expect(added, 'the renegotiation is answered').toMatchObject({ ok: true, peerId: cam.peerId });
    expect((added as { sdp: string }).sdp).toMatch(/a=mid:1\r?\n(?:.*\r?\n)*?a=recvonly/);
    await until('input frames taken', () => inputs() >= 10, 20_000);
    // The model's output ("original") is the colour the camera sends, through VP8 and back.
    await until('the output is the camera', () => rec.frames.slice(-3).some((f) => near(f.data, cam.colour)), 10_000);
    cam.colour = [30, 160, 220];
    await until('the output follows the camera', () => rec.frames.slice(-3).some((f) => near(f.data, cam.colour)), 10_000);
    // A lost packet: the server drops frames until a keyframe, and asks for one.
    const plis = cam.counts.plis;
    cam.loseOne();
    await until('a PLI after the loss', () => cam.counts.plis > plis, 5_000);
    const afterLoss = inputs();
    await until('frames again after the keyframe', () => inputs() >= afterLoss + 10, 10_000);
    // Rate-limited: 20 losses in a second bring at most one PLI per 250 ms (and the first PLIs on joining).
    const before = cam.counts.plis;
    for (let i = 0; i < 20; i++) {
      cam.loseOne();
      await sleep(50);
    }
    await sleep(300);
    expect(cam.counts.plis - before, 'PLIs for 20 losses in ~1 s').toBeLessThanOrEqual(6);
    expect(cam.counts.plis - before).toBeGreaterThanOrEqual(1);
    // The peer is the same one: one opened, still one open.
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/^framehost_webrtc_peers 1$/m);
    expect(metrics).toMatch(/^framehost_webrtc_peers_opened_total 1$/m);
    expect(h.rt.phase()).toBe('running');
    // Camera off (no more frames): the server takes no more.
    cam.stop();
    await sleep(300);
    const off = inputs();
    await sleep(500);
    expect(inputs()).toBe(off);
  });

  it("a watcher's camera is refused with not_owner, and nothing reaches the model", async () => {
    const h = await filterServer();
    const owner = await h.client();
    await owner.start({ encoding: 'raw' });
    const watcher = await h.client();
    const rejected = new Promise<{ track: string; error: { code: string } }>((resolve) => watcher.on('input:rejected', resolve));
    const cam = await cameraPeer(watcher);
    expect(await cam.addCamera()).toMatchObject({ ok: true });
    expect(await rejected).toMatchObject({ track: 'camera', error: { code: 'not_owner' } });
    await sleep(500);
    expect(h.rt.status().session?.inputs).toBe(0);
    expect(h.rt.phase()).toBe('running');
  });

  it('an unknown input track is refused, and the peer stays as it was', async () => {
    const h = await filterServer();
    const owner = await h.client();
    const cam = await cameraPeer(owner);
    const r = (await owner.request('webrtc:offer', { sdp: cam.pc.localDescription()!.sdp, peerId: cam.peerId, inputTrack: 'nope' })) as Result;
    expect(r).toMatchObject({ ok: false, error: { code: 'unknown_track' } });
    expect(await (await fetch(`${h.url}/metrics`)).text()).toMatch(/^framehost_webrtc_peers 1$/m);
  });
});

describe('VP8 depacketizer', () => {
  const writer = (): RtpWriter => new RtpWriter({ ssrc: 7, payloadType: PT, playoutDelayId: null });
  /** A fake VP8 frame: the first byte's P bit (0: keyframe). */
  const frame = (key: boolean, bytes: number): Buffer => Buffer.alloc(bytes, key ? 0x10 : 0x11);
  const packets = (w: RtpWriter, f: Buffer, ts: number, id: number): Buffer[] => {
    const ps = vp8Payloads(f, id, 100);
    return ps.map((p, i) => w.packet(p, ts, i === ps.length - 1));
  };

  it('gives whole frames at the marker; a gap drops frames until a keyframe; late packets are ignored', () => {
    const w = writer();
    const d = new Vp8Depacketizer(PT);
    const key = packets(w, frame(true, 250), 0, 0);
    expect(key.map((p) => d.push(p))).toEqual([null, null, expect.objectContaining({ key: true, timestamp: 0 })]);
    const got = (d.push(packets(w, frame(false, 50), 3000, 1)[0]!) as { data: Buffer }).data;
    expect(got.length).toBe(50);
    // A delta frame loses its middle packet: dropped, reported as a gap.
    const cut = packets(w, frame(false, 250), 6000, 2);
    expect([d.push(cut[0]!), d.push(cut[2]!)]).toEqual([null, 'gap']);
    expect(d.push(cut[1]!), 'late').toBeNull();
    // Delta frames until the keyframe are dropped (their reference is gone).
    expect(d.push(packets(w, frame(false, 50), 9000, 3)[0]!)).toBe('waiting');
    expect(d.push(packets(w, frame(true, 50), 12000, 4)[0]!)).toMatchObject({ key: true });
    expect(d.push(packets(w, frame(false, 50), 15000, 5)[0]!)).toMatchObject({ key: false });
    expect(d.counts).toMatchObject({ gaps: 1, frames: 4 });
  });

  it('skips padding-only packets and packets of another payload type', () => {
    const w = writer();
    const d = new Vp8Depacketizer(PT);
    expect(d.push(packets(w, frame(true, 50), 0, 0)[0]!)).toMatchObject({ key: true });
    const pad = w.packet(Buffer.alloc(0), 0, false);
    const padded = Buffer.concat([pad, Buffer.from([0, 0, 0, 4])]);
    padded[0]! |= 0x20;
    expect(d.push(padded)).toBeNull();
    const other = packets(writer(), frame(false, 50), 3000, 1)[0]!;
    other[1] = (other[1]! & 0x80) | 97;
    expect(d.push(other)).toBeNull();
    expect(d.push(packets(w, frame(false, 50), 3000, 1)[0]!)).toMatchObject({ key: false });
    expect(d.counts.gaps).toBe(0);
  });
});
