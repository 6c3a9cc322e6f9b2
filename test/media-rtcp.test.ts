/** RTCP reports (src/media/rtcp.ts): compound packets, SR blocks, bad bytes, the round-trip arithmetic. */
import { describe, expect, it } from 'vitest';
import { ntpMiddle, receiverReport, reportBlocks, roundTripMs, senderReport, type ReportBlock } from '../src/media/rtcp.ts';

const block = (over: Partial<ReportBlock> = {}): ReportBlock => ({ ssrc: 0xdeadbeef, fractionLost: 0.25, cumulativeLost: 42, highestSeq: 70_000, jitter: 90, lsr: 0, dlsr: 0, ...over });
/** An RTCP packet of this type with a body of `words` 32-bit words of 0x11. */
const other = (pt: number, words: number) => Buffer.concat([Buffer.from([0x80, pt, 0, words]), Buffer.alloc(words * 4, 0x11)]);

describe('RTCP receiver reports', () => {
  it('reads an RR block about our SSRC, and ignores blocks about others', () => {
    const rr = receiverReport(1, block());
    expect(reportBlocks(rr, 0xdeadbeef)).toEqual([{ ...block(), fractionLost: 64 / 256 }]);
    expect(reportBlocks(rr, 0x1234)).toEqual([]);
    const negative = receiverReport(1, block({ cumulativeLost: -3 }));
    expect(reportBlocks(negative, 0xdeadbeef)[0]!.cumulativeLost).toBe(-3);
  });

  it('walks a compound packet (SR with a block, SDES, REMB, RR) and finds every block about us', () => {
    const sr = senderReport({ ssrc: 9, unixMs: Date.now(), rtpTimestamp: 1, packets: 2, octets: 3 });
    // An SR that also carries one report block: RC = 1, length 12 words.
    const srWithBlock = Buffer.concat([sr, receiverReport(9, block({ fractionLost: 0.5 })).subarray(8)]);
    srWithBlock[0] = 0x81;
    srWithBlock.writeUInt16BE(12, 2);
    const compound = Buffer.concat([srWithBlock, other(202, 3), other(206, 4), receiverReport(7, block({ fractionLost: 0 }))]);
    expect(reportBlocks(compound, 0xdeadbeef).map((b) => b.fractionLost)).toEqual([0.5, 0]);
  });

  it('bad bytes give no blocks and never throw', () => {
    const rr = receiverReport(1, block());
    expect(reportBlocks(rr.subarray(0, 20), 0xdeadbeef)).toEqual([]); // cut short
    expect(reportBlocks(Buffer.from([0x40, 201, 0, 7, ...rr.subarray(4)]), 0xdeadbeef)).toEqual([]); // version 1
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.from(Array.from({ length: i % 80 }, () => Math.floor(Math.random() * 256)));
      expect(() => reportBlocks(junk, 0xdeadbeef)).not.toThrow();
    }
  });

  it('a round trip from LSR and DLSR: arrival minus the SR time minus the delay at the viewer', () => {
    const sentAt = Date.parse('2026-01-01T00:00:00Z');
    const sr = senderReport({ ssrc: 5, unixMs: sentAt, rtpTimestamp: 0, packets: 0, octets: 0 });
    const lsr = sr.readUInt32BE(10);
    expect(lsr).toBe(ntpMiddle(sentAt));
    // The viewer held it 200 ms; it arrives back 230 ms after it was sent: 30 ms on the wire both ways.
    const rtt = roundTripMs(block({ lsr, dlsr: 0.2 * 65536 }), sentAt + 230);
    expect(rtt).toBeCloseTo(30, 0);
    expect(roundTripMs(block({ lsr: 0 }), sentAt)).toBeNull(); // no SR echoed yet
    expect(roundTripMs(block({ lsr, dlsr: 65536 }), sentAt + 100)).toBeNull(); // a delay longer than the trip: not plausible
  });
});

describe('VP8 keyframe size', () => {
  it('reads the picture size from a keyframe payload, null for a delta frame', async () => {
    const { keyframeSize, vp8Payloads } = await import('../src/media/vp8-rtp.ts');
    const { Vp8Encoder } = await import('../src/media/vp8-encoder.ts');
    const enc = new Vp8Encoder({ width: 64, height: 48, source: { width: 128, height: 96 }, fps: 30, bitrateKbps: 200, gopFrames: 100 });
    try {
      const rgba = new Uint8Array(128 * 96 * 4).fill(120);
      const [key] = enc.encode(rgba);
      const [delta] = enc.encode(rgba);
      expect(key!.key).toBe(true);
      expect(keyframeSize(vp8Payloads(key!.data, 1)[0]!)).toEqual({ width: 64, height: 48 }); // scaled down from 128×96
      expect(keyframeSize(vp8Payloads(delta!.data, 2)[0]!)).toBeNull();
    } finally {
      enc.close();
    }
  });
});
