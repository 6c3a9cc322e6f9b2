/**
 * RTCP sender and receiver reports (RFC 3550 §6.4) for the room's outlets: a viewer's receiver
 * reports say how much of its stream it lost, its jitter, and (with the sender reports an outlet
 * writes) the round trip. Written here because node-datachannel hands RTCP to `onMessage` as bytes
 * and its RtcpSrReporter needs a packetizer's config that the room (its own VP8 packetizer) has not.
 * Reports arrive in compound packets (an RR with REMB, SDES, NACK…): every part is walked.
 */

/** One report block about one of our streams (an outlet's SSRC), as the viewer wrote it. */
export interface ReportBlock {
  readonly ssrc: number;
  /** Share of packets lost since the viewer's previous report (0-1; 8-bit fixed point on the wire). */
  readonly fractionLost: number;
  /** Packets lost since the stream began (24-bit signed: duplicates can make it negative). */
  readonly cumulativeLost: number;
  /** Extended highest sequence number received. */
  readonly highestSeq: number;
  /** Interarrival jitter, RTP clock units (90 kHz for video). */
  readonly jitter: number;
  /** Middle 32 bits of the NTP time of our last sender report it got (0: none yet). */
  readonly lsr: number;
  /** Delay since that sender report, 1/65536 s. */
  readonly dlsr: number;
}

const PT_SR = 200;
const PT_RR = 201;
/** Seconds from 1900 (NTP's epoch) to 1970 (Unix's). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** The report blocks about `ssrc` in a (compound) RTCP packet, from its RRs and SRs; [] if none or malformed. */
export function reportBlocks(rtcp: Buffer, ssrc: number): ReportBlock[] {
  const out: ReportBlock[] = [];
  for (let at = 0; at + 8 <= rtcp.length; ) {
    if ((rtcp[at]! & 0xc0) !== 0x80) break; // not RTCP version 2: the rest cannot be trusted
    const count = rtcp[at]! & 0x1f;
    const pt = rtcp[at + 1]!;
    const end = at + (rtcp.readUInt16BE(at + 2) + 1) * 4;
    if (end > rtcp.length) break;
    if (pt === PT_RR || pt === PT_SR) {
      const first = at + 8 + (pt === PT_SR ? 20 : 0); // header + sender SSRC (+ sender info)
      for (let b = 0; b < count && first + (b + 1) * 24 <= end; b++) {
        const block = readBlock(rtcp, first + b * 24);
        if (block.ssrc === ssrc >>> 0) out.push(block);
      }
    }
    at = end;
  }
  return out;
}

function readBlock(b: Buffer, at: number): ReportBlock {
  return {
    ssrc: b.readUInt32BE(at),
    fractionLost: b[at + 4]! / 256,
    cumulativeLost: b.readIntBE(at + 5, 3),
    highestSeq: b.readUInt32BE(at + 8),
    jitter: b.readUInt32BE(at + 12),
    lsr: b.readUInt32BE(at + 16),
    dlsr: b.readUInt32BE(at + 20),
  };
}

/** NTP time (seconds since 1900, 32.32 fixed point) of a Unix time in ms: [seconds, fraction]. */
function ntp(unixMs: number): [number, number] {
  const seconds = Math.floor(unixMs / 1000);
  const fraction = Math.floor(((unixMs - seconds * 1000) / 1000) * 2 ** 32);
  return [(seconds + NTP_UNIX_OFFSET_S) >>> 0, fraction >>> 0];
}

/** The middle 32 bits of the NTP time (16.16 fixed point): what a receiver echoes as LSR. */
export function ntpMiddle(unixMs: number): number {
  const [s, f] = ntp(unixMs);
  return (((s & 0xffff) << 16) | (f >>> 16)) >>> 0;
}

/**
 * Round trip from a report block that echoes one of our sender reports (RFC 3550 §6.4.1: arrival
 * minus LSR minus DLSR), in ms; null when the viewer has not had a sender report yet or the figure
 * is not plausible (clock arithmetic wrapped: a report older than the one it answers).
 */
export function roundTripMs(block: ReportBlock, arrivedUnixMs: number): number | null {
  if (block.lsr === 0) return null;
  const units = (ntpMiddle(arrivedUnixMs) - block.lsr - block.dlsr) >>> 0;
  const ms = (units / 65536) * 1000;
  return ms < 60_000 ? ms : null;
}

export interface SenderInfo {
  readonly ssrc: number;
  /** The wall clock (Unix ms) the report is stamped with. */
  readonly unixMs: number;
  /** The RTP timestamp that corresponds to that instant. */
  readonly rtpTimestamp: number;
  readonly packets: number;
  /** Payload bytes sent. */
  readonly octets: number;
}

/** A sender report with no report blocks (28 bytes): lets the viewer's RRs carry LSR/DLSR, hence RTT. */
export function senderReport(s: SenderInfo): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80; // version 2, no padding, no report blocks
  b[1] = PT_SR;
  b.writeUInt16BE(6, 2); // length in 32-bit words minus one
  b.writeUInt32BE(s.ssrc >>> 0, 4);
  const [sec, frac] = ntp(s.unixMs);
  b.writeUInt32BE(sec, 8);
  b.writeUInt32BE(frac, 12);
  b.writeUInt32BE(s.rtpTimestamp >>> 0, 16);
  b.writeUInt32BE(s.packets >>> 0, 20);
  b.writeUInt32BE(s.octets >>> 0, 24);
  return b;
}

/** A receiver report with one block (32 bytes), as a viewer writes it: for viewers and tests that count their own loss. */
export function receiverReport(senderSsrc: number, block: ReportBlock): Buffer {
  const b = Buffer.alloc(32);
  b[0] = 0x81; // version 2, one report block
  b[1] = PT_RR;
  b.writeUInt16BE(7, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(block.ssrc >>> 0, 8);
  b[12] = Math.min(255, Math.max(0, Math.floor(block.fractionLost * 256)));
  b.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, block.cumulativeLost)), 13, 3);
  b.writeUInt32BE(block.highestSeq >>> 0, 16);
  b.writeUInt32BE(block.jitter >>> 0, 20);
  b.writeUInt32BE(block.lsr >>> 0, 24);
  b.writeUInt32BE(block.dlsr >>> 0, 28);
  return b;
}
