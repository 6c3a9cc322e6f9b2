/**
 * VP8 out of RTP (RFC 7741), the receiving half of vp8-rtp.ts: packets of one SSRC in, whole
 * encoded frames out. A frame starts at a packet whose payload descriptor has S set and PartID 0,
 * and ends at the RTP marker bit. A gap in the sequence numbers drops the frame being gathered and
 * every frame after it until a keyframe (a delta frame whose reference was lost decodes to
 * garbage): the caller asks the sender for one (PLI). Late or duplicate packets are ignored.
 */
import { rtpPayload } from './vp8-rtp.ts';

export interface Vp8Frame {
  readonly data: Buffer;
  readonly key: boolean;
  /** The RTP timestamp (90 kHz) of its packets. */
  readonly timestamp: number;
}

/**
 * What a packet gave: a whole frame; `gap` (packets were lost: a keyframe is needed);
 * `waiting` (a whole delta frame dropped while waiting for a keyframe); or null (nothing yet).
 */
export type DepacketizerResult = Vp8Frame | 'gap' | 'waiting' | null;

/** The offset of the VP8 payload after the payload descriptor, or -1 if the descriptor is cut short. */
export function descriptorLength(payload: Buffer): number {
  if (payload.length < 1) return -1;
  let at = 1;
  if (payload[0]! & 0x80) {
    if (payload.length < 2) return -1;
    const x = payload[at++]!;
    if (x & 0x80) {
      if (payload.length <= at) return -1;
      at += payload[at]! & 0x80 ? 2 : 1; // picture id, 15 or 7 bits
    }
    if (x & 0x40) at++; // TL0PICIDX
    if (x & 0x30) at++; // TID/Y/KEYIDX
  }
  return at <= payload.length ? at : -1;
}

/** The RTP header fields the depacketizer needs, or null for a packet that is not RTP. */
function header(packet: Buffer): { seq: number; timestamp: number; marker: boolean; payloadType: number; ssrc: number } | null {
  if (packet.length < 12 || (packet[0]! & 0xc0) !== 0x80) return null;
  return { seq: packet.readUInt16BE(2), timestamp: packet.readUInt32BE(4), marker: (packet[1]! & 0x80) !== 0, payloadType: packet[1]! & 0x7f, ssrc: packet.readUInt32BE(8) };
}

export class Vp8Depacketizer {
  private expected: number | null = null;
  private parts: Buffer[] = [];
  private gathering = false;
  private timestamp = 0;
  private key = false;
  private needKeyframe = true;
  /** The sender's SSRC, from its first packet (a new SSRC starts over). */
  ssrc: number | null = null;
  /** Packets taken, gaps seen (lost packets), frames given, frames dropped (cut by a gap or waiting for a keyframe). */
  readonly counts = { packets: 0, gaps: 0, frames: 0, dropped: 0 };

  /** `payloadType`: the one VP8 was negotiated with (others, e.g. padding on RTX, are ignored); null: any. */
  constructor(private readonly payloadType: number | null = null) {}

  /** Wait for a keyframe from now on (after a decode error). */
  reset(): void {
    if (this.gathering) this.counts.dropped++;
    this.gathering = false;
    this.parts = [];
    this.needKeyframe = true;
  }

  push(packet: Buffer): DepacketizerResult {
    const h = header(packet);
    if (!h || (this.payloadType !== null && h.payloadType !== this.payloadType)) return null;
    if (this.ssrc !== h.ssrc) {
      this.ssrc = h.ssrc;
      this.expected = null;
      this.reset();
    }
    this.counts.packets++;
    let gap = false;
    if (this.expected !== null && h.seq !== this.expected) {
      const ahead = (h.seq - this.expected) & 0xffff;
      if (ahead >= 0x8000) return null; // late or duplicate: its frame was already given or dropped
      gap = true;
      this.counts.gaps++;
      this.reset();
    }
    this.expected = (h.seq + 1) & 0xffff;
    let payload = rtpPayload(packet);
    if (payload && packet[0]! & 0x20) {
      // Padding (P): its last byte says how many bytes to drop; padding-only packets carry nothing.
      const pad = packet[packet.length - 1]!;
      payload = pad <= payload.length ? payload.subarray(0, payload.length - pad) : null;
    }
    if (!payload || payload.length === 0) return gap ? 'gap' : null;
    const at = descriptorLength(payload);
    if (at < 0 || at >= payload.length) return gap ? 'gap' : null;
    const start = (payload[0]! & 0x10) !== 0 && (payload[0]! & 0x07) === 0;
    if (start) {
      if (this.gathering) this.counts.dropped++; // the last frame never got its marker
      this.gathering = true;
      this.parts = [];
      this.timestamp = h.timestamp;
      this.key = (payload[at]! & 0x01) === 0; // the frame header's P bit: 0 on a keyframe
    } else if (!this.gathering || h.timestamp !== this.timestamp) {
      return gap ? 'gap' : null; // the middle of a frame whose start was lost
    }
    this.parts.push(payload.subarray(at));
    if (!h.marker) return gap ? 'gap' : null;
    this.gathering = false;
    const data = Buffer.concat(this.parts);
    this.parts = [];
    if (this.needKeyframe && !this.key) {
      this.counts.dropped++;
      return gap ? 'gap' : 'waiting';
    }
    this.needKeyframe = false;
    this.counts.frames++;
    return { data, key: this.key, timestamp: this.timestamp };
  }
}
