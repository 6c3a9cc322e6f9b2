/**
 * Encode once (src/media/): one VP8 encode per frame fanned out to every viewer, over real
 * WebRTC on loopback. The libwebrtc viewers run in a child process (test/helpers/wrtc-receivers.ts:
 * node-datachannel, in this process, and wrtc were not cleared to share one); a libdatachannel
 * viewer in this process sends a real RTCP PLI. Every peer binds 127.0.0.1 only.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import nodeDataChannel from 'node-datachannel';
import { ChildRpc } from '../bench/child-rpc.ts';
import { DEFAULT_ROOM, MediaRoom } from '../src/media/room.ts';
import { rtpPayload, startsKeyframe } from '../src/media/vp8-rtp.ts';
import type { ReceiversRequest, ReceiverStats } from './helpers/wrtc-receivers.ts';
import { until } from './helpers/runtime.ts';
import { RoomSource } from './helpers/room-source.ts';

const SIZE = 128;
const roomOptions = { ...DEFAULT_ROOM, outlet: { ...DEFAULT_ROOM.outlet, bindAddress: '127.0.0.1' } };


let rx: ChildRpc<ReceiversRequest>;
const rooms: MediaRoom[] = [];
const sources: RoomSource[] = [];
beforeAll(() => {
  rx = new ChildRpc<ReceiversRequest>(new URL('./helpers/wrtc-receivers.ts', import.meta.url));
});
afterAll(async () => {
  await rx.close();
});
afterEach(() => {
  for (const s of sources.splice(0)) s.stop();
  for (const r of rooms.splice(0)) r.close();
});

function open(): { room: MediaRoom; source: RoomSource } {
  const room = new MediaRoom(roomOptions);
  const source = new RoomSource(room, SIZE);
  rooms.push(room);
  sources.push(source);
  return { room, source };
}

/** One libwebrtc viewer in the child: offer, the room's answer, applied. Its index in the child's list. */
async function viewer(room: MediaRoom): Promise<number> {
  const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
  const answer = await room.join(offer.sdp);
  if (typeof answer === 'string') throw new Error(answer);
  expect(answer.sdp.match(/^a=candidate:.*$/gm)?.map((c) => c.split(' ')[4])).toEqual(['127.0.0.1']);
  await rx.ask({ type: 'answer', index: offer.index, sdp: answer.sdp });
  return offer.index;
}

const stats = (): Promise<ReceiverStats[]> => rx.ask<ReceiverStats[]>({ type: 'stats' });

/** Poll the child's figures until `check` holds. */
async function statsUntil(what: string, check: (s: ReceiverStats[]) => boolean, ms: number): Promise<ReceiverStats[]> {
  const started = Date.now();
  for (;;) {
    const s = await stats();
    if (check(s)) return s;
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('encode once, fan out', { timeout: 60_000 }, () => {
  it('8 libwebrtc viewers decode the frames of one encode; a late joiner gets a keyframe and a picture within 300 ms', async () => {
    const { room, source } = open();
    const first = (await stats()).length;
    const eight: number[] = [];
    for (let i = 0; i < 8; i++) eight.push(await viewer(room));
    await statsUntil('every viewer decodes', (s) => s.slice(first).length === 8 && s.slice(first).every((v) => v.frames >= 10), 20_000);
    const before = await stats();
    const encoded0 = room.counts.frames;
    const pushed0 = source.pushed;
    await new Promise((r) => setTimeout(r, 1500));
    const after = await stats();
    const encoded = room.counts.frames - encoded0;
    const pushed = source.pushed - pushed0;
    // One encode per frame, whatever the number of viewers.
    expect(encoded).toBeLessThanOrEqual(pushed + 1);
    expect(encoded).toBeGreaterThan(30);
    for (const i of eight) {
      expect(after[i]!.frames - before[i]!.frames, `viewer ${i}: decoded of ${encoded} encoded`).toBeGreaterThan(encoded * 0.8);
      expect([after[i]!.width, after[i]!.height]).toEqual([SIZE, SIZE]);
    }
    const late = await viewer(room);
    // libwebrtc's stats catch up with the decoder a little later than its first frame.
    const joined = (await statsUntil('the late joiner decodes its keyframe', (s) => s[late]!.frames > 0 && s[late]!.keyFramesDecoded >= 1, 5000))[late]!;
    console.log(`late joiner: offer → first decoded frame ${joined.firstFrameMs?.toFixed(0)} ms; ${encoded} frames encoded for 8 viewers in 1.5 s, ${(room.counts.encodeMs / room.counts.frames).toFixed(2)} ms encode+send per frame`);
    expect(joined.firstFrameMs, 'offer → first decoded frame, ms').toBeLessThan(300);
    expect(room.viewers).toBe(9);
  });
});

describe('keyframe on request', { timeout: 30_000 }, () => {
  it('a PLI from a viewer gets a keyframe (rate-limited for everybody)', async () => {
    const { room } = open();
    const pc = new nodeDataChannel.PeerConnection('pli-viewer', { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false });
    const media = new nodeDataChannel.Video('0', 'RecvOnly');
    media.addVP8Codec(96);
    const track = pc.addTrack(media);
    track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
    const keyframesAt: number[] = [];
    track.onMessage((packet) => {
      const payload = rtpPayload(packet);
      if (payload && startsKeyframe(payload)) keyframesAt.push(performance.now());
    });
    const gathered = new Promise<void>((resolve) => pc.onGatheringStateChange((s) => s === 'complete' && resolve()));
    pc.setLocalDescription();
    await gathered;
    const answer = await room.join(pc.localDescription()!.sdp);
    if (typeof answer === 'string') throw new Error(answer);
    pc.setRemoteDescription(answer.sdp, 'answer');
    try {
      await until('the keyframe on join', () => keyframesAt.length >= 1, 10_000);
      await new Promise((r) => setTimeout(r, 500)); // past the rate limit; the stream goes on in delta frames
      expect(keyframesAt.length).toBe(1);
      const keyframes = room.counts.keyframes;
      const asked = performance.now();
      expect(track.requestKeyframe()).toBe(true); // RTCP PLI (PT 206, FMT 1)
      await until('a keyframe after the PLI', () => keyframesAt.length >= 2, 5000);
      expect(answer.outlet.keyframeRequests).toBeGreaterThanOrEqual(1);
      expect(room.counts.keyframes).toBe(keyframes + 1);
      expect(keyframesAt[1]! - asked, 'PLI → keyframe, ms').toBeLessThan(200);
      // A storm of PLIs gets at most one keyframe per interval.
      const storm = room.counts.keyframes;
      for (let i = 0; i < 20; i++) track.requestKeyframe();
      await new Promise((r) => setTimeout(r, 300));
      expect(room.counts.keyframes - storm).toBeLessThanOrEqual(Math.ceil(300 / roomOptions.minKeyframeIntervalMs) + 1);
    } finally {
      track.close();
      pc.close();
    }
  });
});
