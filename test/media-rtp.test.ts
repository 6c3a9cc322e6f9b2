/** VP8 over RTP (src/media/vp8-rtp.ts) and the offer reader (src/media/offer.ts), on bytes and on a real libwebrtc offer. */
import { describe, expect, it } from 'vitest';
import { readVideoOffer } from '../src/media/offer.ts';
import { asksForKeyframe, RtpWriter, rtpPayload, startsKeyframe, vp8Payloads } from '../src/media/vp8-rtp.ts';
import { KeyframeGate } from '../src/media/room.ts';

describe('VP8 payloads (RFC 7741)', () => {
  it('cuts a frame into payloads behind a descriptor: S on the first, a 15-bit picture id on all', () => {
    const key = Buffer.alloc(2500, 7);
    key[0] = 0x10; // frame tag: P bit clear = keyframe
    const p = vp8Payloads(key, 0x1234, 1000);
    expect(p.map((x) => x.length)).toEqual([1004, 1004, 504]);
    expect([...p[0]!.subarray(0, 4)]).toEqual([0x90, 0x80, 0x92, 0x34]);
    expect([...p[1]!.subarray(0, 4)]).toEqual([0x80, 0x80, 0x92, 0x34]);
    expect(Buffer.concat(p.map((x) => x.subarray(4)))).toEqual(key);
    expect(startsKeyframe(p[0]!)).toBe(true);
    expect(startsKeyframe(p[1]!)).toBe(false); // not a partition start
    const delta = Buffer.from([0x01, 2, 3]);
    expect(startsKeyframe(vp8Payloads(delta, 1)[0]!)).toBe(false);
  });

  it('RTP headers: sequence numbers per outlet, marker on the last, the playout-delay extension at 0/0', () => {
    const w = new RtpWriter({ ssrc: 0xdeadbeef, payloadType: 96, playoutDelayId: 5 });
    const a = w.packet(Buffer.from([1, 2]), 90_000, false);
    const b = w.packet(Buffer.from([3]), 90_000, true);
    expect(a[0]).toBe(0x90); // V=2, X
    expect(a[1]).toBe(96);
    expect(b[1]).toBe(0x80 | 96);
    expect((b.readUInt16BE(2) - a.readUInt16BE(2)) & 0xffff).toBe(1);
    expect(a.readUInt32BE(4)).toBe(90_000);
    expect(a.readUInt32BE(8)).toBe(0xdeadbeef);
    expect([...a.subarray(12, 20)]).toEqual([0xbe, 0xde, 0, 1, 0x52, 0, 0, 0]);
    expect([...rtpPayload(a)!]).toEqual([1, 2]);
    const plain = new RtpWriter({ ssrc: 1, payloadType: 100, playoutDelayId: null }).packet(Buffer.from([9]), 0, true);
    expect(plain.length).toBe(13);
    expect([...rtpPayload(plain)!]).toEqual([9]);
  });

  it('RTCP: PLI and FIR ask for a keyframe (also inside a compound packet); a receiver report does not', () => {
    const rr = Buffer.from([0x81, 201, 0, 7, ...new Array<number>(28).fill(0)]);
    const pli = Buffer.from([0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    const fir = Buffer.from([0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0]);
    const nack = Buffer.from([0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 5, 0, 0]);
    expect(asksForKeyframe(rr)).toBe(false);
    expect(asksForKeyframe(nack)).toBe(false);
    expect(asksForKeyframe(pli)).toBe(true);
    expect(asksForKeyframe(fir)).toBe(true);
    expect(asksForKeyframe(Buffer.concat([rr, pli]))).toBe(true);
  });

  it('keyframe gate: one per interval, a request meanwhile waits for the next slot', () => {
    const g = new KeyframeGate(100);
    expect(g.take(0)).toBe(false);
    g.request();
    expect(g.take(0)).toBe(true);
    g.request();
    g.request();
    expect(g.take(50)).toBe(false);
    expect(g.take(100)).toBe(true);
    expect(g.take(300)).toBe(false);
  });
});

describe('reading an offer', () => {
  const offer = (lines: string[]): string => ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...lines, ''].join('\r\n');
  it('takes the receive section, its VP8 payload type and playout-delay id; refuses what it cannot serve', () => {
    const video = ['m=video 9 UDP/TLS/RTP/SAVPF 96 98', 'a=mid:v1', 'a=extmap:12 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay', 'a=recvonly', 'a=rtpmap:96 VP9/90000', 'a=rtpmap:98 VP8/90000'];
    expect(readVideoOffer(offer(video))).toEqual({ mid: 'v1', vp8PayloadType: 98, playoutDelayId: 12 });
    expect(readVideoOffer(offer(video.filter((l) => !l.startsWith('a=extmap'))))).toMatchObject({ playoutDelayId: null });
    expect(readVideoOffer(offer(video.map((l) => (l === 'a=recvonly' ? 'a=sendonly' : l))))).toMatch(/no video section to receive on/);
    expect(readVideoOffer(offer(video.filter((l) => !l.includes('VP8'))))).toMatch(/does not offer VP8/);
    expect(readVideoOffer('v=0\r\n')).toMatch(/no video section/);
  });
});
