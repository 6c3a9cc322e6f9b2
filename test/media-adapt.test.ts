/**
 * Per-viewer adaptation in the encode-once room (src/media/room.ts, src/machines/rendition.machine.ts),
 * over real WebRTC on loopback: libwebrtc viewers in child processes (test/helpers/wrtc-receivers.ts)
 * send their own receiver reports; a lossy viewer is a libdatachannel peer in this process that
 * drops a share of the packets it receives before it counts them and reports what it really got
 * (RFC 3550 arithmetic). Every peer binds 127.0.0.1 only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import nodeDataChannel from 'node-datachannel';
import { ChildRpc } from '../bench/child-rpc.ts';
import { DEFAULT_ROOM, MediaRoom } from '../src/media/room.ts';
import type { Outlet } from '../src/media/outlet.ts';
import { receiverReport } from '../src/media/rtcp.ts';
import { isRtcp, keyframeSize, rtpPayload } from '../src/media/vp8-rtp.ts';
import type { ReceiversRequest, ReceiverStats } from './helpers/wrtc-receivers.ts';
import { until } from './helpers/runtime.ts';
import { RoomSource } from './helpers/room-source.ts';

const SIZE = 128;
const roomOptions = { ...DEFAULT_ROOM, outlet: { ...DEFAULT_ROOM.outlet, bindAddress: '127.0.0.1' } };
const limits = roomOptions.rendition;


/**
 * A viewer on a bad line: a libdatachannel peer that drops every `dropEvery`-th RTP packet before
 * it counts it, and every 500 ms sends the receiver report those counts give (fraction lost since
 * the last report, cumulative loss, highest sequence number, and LSR/DLSR from the room's sender
 * reports). Its track is send-and-receive only so that libdatachannel lets it send RTCP.
 */
class LossyViewer {
  readonly pc = new nodeDataChannel.PeerConnection('lossy-viewer', { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false });
  readonly track: nodeDataChannel.Track;
  dropEvery = 0;
  bytes = 0;
  frames = 0;
  /** The picture size of the last keyframe that reached it. */
  size: { width: number; height: number } | null = null;
  private arrived = 0;
  private received = 0;
  private cycles = 0;
  private lastSeq = -1;
  private baseSeq = -1;
  private ssrc = 0;
  private lastSr: { lsr: number; at: number } | null = null;
  private prior = { expected: 0, received: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor() {
    const media = new nodeDataChannel.Video('0', 'SendRecv');
    media.addVP8Codec(96);
    media.addSSRC(0x1234567, 'lossy', 'lossy', 'video');
    this.track = this.pc.addTrack(media);
    this.track.onMessage((packet) => this.take(packet));
    this.timer = setInterval(() => this.report(), 500);
  }

  private take(packet: Buffer): void {
    if (isRtcp(packet)) {
      if (packet[1] === 200) this.lastSr = { lsr: packet.readUInt32BE(10), at: performance.now() }; // the SR's NTP, middle 32 bits
      return;
    }
    // The size of the pictures that reach it (a lost keyframe packet is for its NACK/PLI, which this viewer does not send).
    const payload = rtpPayload(packet);
    this.size = (payload && keyframeSize(payload)) ?? this.size;
    if (this.dropEvery > 0 && ++this.arrived % this.dropEvery === 0) return; // lost on the line
    const seq = packet.readUInt16BE(2);
    this.ssrc = packet.readUInt32BE(8);
    if (this.baseSeq < 0) this.baseSeq = this.lastSeq = seq;
    if (((seq - this.lastSeq) & 0xffff) < 0x8000) {
      if (seq < this.lastSeq) this.cycles += 0x10000;
      this.lastSeq = seq;
    }
    this.received++;
    this.bytes += packet.length;
    if (packet[1]! & 0x80) this.frames++;
  }

  private report(): void {
    if (this.baseSeq < 0 || !this.track.isOpen()) return;
    const highest = this.cycles + this.lastSeq;
    const expected = highest - this.baseSeq + 1;
    const interval = { expected: expected - this.prior.expected, received: this.received - this.prior.received };
    this.prior = { expected, received: this.received };
    const dlsr = this.lastSr ? Math.round(((performance.now() - this.lastSr.at) / 1000) * 65536) : 0;
    const fractionLost = interval.expected > 0 ? Math.max(0, interval.expected - interval.received) / interval.expected : 0;
    this.track.sendMessageBinary(
      receiverReport(0x1234567, { ssrc: this.ssrc, fractionLost, cumulativeLost: expected - this.received, highestSeq: highest, jitter: 0, lsr: this.lastSr?.lsr ?? 0, dlsr }),
    );
  }

  async offer(): Promise<string> {
    const gathered = new Promise<void>((resolve) => this.pc.onGatheringStateChange((s) => s === 'complete' && resolve()));
    this.pc.setLocalDescription();
    await gathered;
    return this.pc.localDescription()!.sdp;
  }

  close(): void {
    clearInterval(this.timer);
    this.track.close();
    this.pc.close();
  }
}

const rooms: MediaRoom[] = [];
const sources: RoomSource[] = [];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const s of sources.splice(0)) s.stop();
  for (const r of rooms.splice(0)) r.close();
  await Promise.allSettled(closers.splice(0).map((c) => c()));
});

function open(): { room: MediaRoom; source: RoomSource } {
  const room = new MediaRoom(roomOptions);
  const source = new RoomSource(room, SIZE);
  rooms.push(room);
  sources.push(source);
  return { room, source };
}

/** A child process of libwebrtc viewers. */
function receivers(): ChildRpc<ReceiversRequest> {
  const rx = new ChildRpc<ReceiversRequest>(new URL('./helpers/wrtc-receivers.ts', import.meta.url));
  closers.push(() => rx.close());
  return rx;
}

/** One libwebrtc viewer of `rx` joins the room: its index there and its outlet here. */
async function wrtcViewer(room: MediaRoom, rx: ChildRpc<ReceiversRequest>): Promise<{ index: number; outlet: Outlet }> {
  const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
  const answer = await room.join(offer.sdp);
  if (typeof answer === 'string') throw new Error(answer);
  await rx.ask({ type: 'answer', index: offer.index, sdp: answer.sdp });
  return { index: offer.index, outlet: answer.outlet };
}

const decoded = async (rx: ChildRpc<ReceiversRequest>, index: number): Promise<number> => (await rx.ask<ReceiverStats[]>({ type: 'stats' }))[index]!.frames;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lossy viewer's bytes per frame and frames per second over `ms`. */
async function lossyWindow(v: LossyViewer, ms: number): Promise<{ bytesPerFrame: number; fps: number }> {
  const b0 = v.bytes;
  const f0 = v.frames;
  await sleep(ms);
  return { bytesPerFrame: (v.bytes - b0) / Math.max(1, v.frames - f0), fps: ((v.frames - f0) * 1000) / ms };
}

describe('per-viewer adaptation', { timeout: 90_000 }, () => {
  it("libwebrtc's receiver reports reach the outlet: no loss, jitter, and a round trip from the room's sender reports", async () => {
    const { room } = open();
    const rx = receivers();
    const clean = await wrtcViewer(room, rx);
    await until('a receiver report with a round trip', () => clean.outlet.lastReport?.rttMs != null, 10_000);
    const r = clean.outlet.lastReport!;
    expect(r.ssrc).toBe(clean.outlet.ssrc);
    expect(r.fractionLost).toBe(0);
    expect(r.cumulativeLost).toBe(0);
    expect(r.rttMs!, 'loopback round trip, ms').toBeLessThan(100);
    expect(r.rttMs!).toBeGreaterThanOrEqual(0);
    expect(room.renditionOf(clean.outlet)).toBe('top');
  });

  it('a lossy viewer moves to the low rendition and back when its loss ends; a clean one stays on top at full rate', async () => {
    const { room, source } = open();
    const rx = receivers();
    const clean = await wrtcViewer(room, rx);
    const lossy = new LossyViewer();
    closers.push(() => lossy.close());
    const joined = await room.join(await lossy.offer());
    if (typeof joined === 'string') throw new Error(joined);
    lossy.pc.setRemoteDescription(joined.sdp, 'answer');
    await until('both viewers get frames', () => lossy.frames > 30 && (clean.outlet.lastReport?.highestSeq ?? 0) > 0, 15_000);
    const top = await lossyWindow(lossy, 1500);
    expect(lossy.size).toEqual({ width: SIZE, height: SIZE });

    lossy.dropEvery = 5; // 20% of its packets lost from now on
    const lossFrom = performance.now();
    await until('the lossy viewer on the low rendition', () => room.renditionOf(joined.outlet) === 'low', 10_000);
    const downMs = performance.now() - lossFrom;
    expect(joined.outlet.lastReport!.fractionLost).toBeGreaterThan(limits.lossyFraction);
    expect(room.renditionOf(clean.outlet), 'the clean viewer').toBe('top');
    // While the lossy viewer is down: the clean one decodes at the source's rate, the model's rate is unchanged.
    await sleep(500); // past the low encoder's first keyframe
    const pushed0 = source.pushed;
    const decoded0 = await decoded(rx, clean.index);
    const low = await lossyWindow(lossy, 2000);
    const pushed = source.pushed - pushed0;
    const cleanDecoded = (await decoded(rx, clean.index)) - decoded0;
    expect(room.renditionOf(clean.outlet)).toBe('top');
    expect(cleanDecoded, `clean viewer decoded ${cleanDecoded} of ${pushed} made`).toBeGreaterThan(pushed * 0.8);
    expect(pushed, 'frames made in 2 s at 60 fps').toBeGreaterThan(90);
    expect(low.bytesPerFrame, `bytes per frame: top ${top.bytesPerFrame.toFixed(0)}, low ${low.bytesPerFrame.toFixed(0)}`).toBeLessThan(top.bytesPerFrame * 0.6);
    const counts = room.renditionCounts();
    expect(lossy.size, 'the low rendition: half the width and height').toEqual({ width: SIZE / 2, height: SIZE / 2 });
    expect(counts.low.frames).toBeGreaterThan(90);
    expect(counts.low.viewers).toBe(1);
    expect(counts.top.viewers).toBe(1);

    lossy.dropEvery = 0; // the line recovers
    const cleanFrom = performance.now();
    await until('the recovered viewer back on top', () => room.renditionOf(joined.outlet) === 'top', limits.upAfterMs + 5000);
    const upMs = performance.now() - cleanFrom;
    await sleep(300);
    const lowFrames = room.renditionCounts().low.frames;
    await sleep(500);
    expect(room.renditionCounts().low.frames, 'no low encodes once nobody is on it').toBe(lowFrames);
    const back = await lossyWindow(lossy, 1500);
    expect(lossy.size).toEqual({ width: SIZE, height: SIZE });
    expect(back.bytesPerFrame).toBeGreaterThan(low.bytesPerFrame * 1.5);
    const perFrame = (r: { encodeMs: number; frames: number }) => (r.encodeMs / r.frames).toFixed(2);
    console.log(
      `down after ${downMs.toFixed(0)} ms of 20% loss, up after ${upMs.toFixed(0)} ms clean; bytes/frame top ${top.bytesPerFrame.toFixed(0)}, low ${low.bytesPerFrame.toFixed(0)}, back ${back.bytesPerFrame.toFixed(0)}; ` +
        `fps lossy viewer ${low.fps.toFixed(1)} on low; encode ms/frame top ${perFrame(counts.top)}, low ${perFrame(counts.low)}`,
    );
    expect(downMs).toBeLessThan(limits.downAfterMs + 2500);
  });

  it('a frozen viewer (SIGSTOP) is moved down for its silence and slows neither the model nor the others', async () => {
    const { room, source } = open();
    const rx = receivers();
    const clean = await wrtcViewer(room, rx);
    const rxFrozen = receivers();
    const frozen = await wrtcViewer(room, rxFrozen);
    await until('both report', () => clean.outlet.lastReport !== null && frozen.outlet.lastReport !== null, 10_000);
    // The frames made per second before the freeze, to compare with those made during it.
    const before0 = { pushed: source.pushed, at: performance.now() };
    await sleep(2000);
    const rateBefore = ((source.pushed - before0.pushed) * 1000) / (performance.now() - before0.at);
    process.kill(rxFrozen.pid!, 'SIGSTOP');
    try {
      const stoppedAt = performance.now();
      const pushed0 = source.pushed;
      const decoded0 = await decoded(rx, clean.index);
      await until('the frozen viewer moved down', () => room.renditionOf(frozen.outlet) === 'low', limits.silentAfterMs + 3000);
      const downMs = performance.now() - stoppedAt;
      await sleep(1000);
      const rateDuring = ((source.pushed - pushed0) * 1000) / (performance.now() - stoppedAt);
      const pushed = source.pushed - pushed0;
      const cleanDecoded = (await decoded(rx, clean.index)) - decoded0;
      console.log(`frozen viewer moved down ${downMs.toFixed(0)} ms after SIGSTOP; frames made per second ${rateBefore.toFixed(1)} before, ${rateDuring.toFixed(1)} during; clean viewer decoded ${cleanDecoded} of ${pushed}`);
      expect(room.renditionOf(clean.outlet)).toBe('top');
      // The room never waits for the frozen viewer: the frames go on at the rate they went before
      // (the source is this process's 60 fps timer, on a machine that may be loaded).
      expect(rateDuring, `frames made per second: ${rateBefore.toFixed(1)} before the freeze`).toBeGreaterThan(rateBefore * 0.85);
      expect(cleanDecoded).toBeGreaterThan(pushed * 0.8);
    } finally {
      process.kill(rxFrozen.pid!, 'SIGCONT');
    }
  });
});
