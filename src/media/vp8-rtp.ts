/**
 * VP8 over RTP (RFC 7741), written here because node-datachannel has no VP8 packetizer: an
 * encoded frame is cut into payloads once, each behind a VP8 payload descriptor, and every outlet
 * puts its own RTP header in front (its SSRC, sequence numbers, payload type and the id its viewer
 * gave the playout-delay extension). Also: reading the RTCP feedback that asks for a keyframe.
 */

/** VP8 bytes per RTP packet: with headers (12 RTP + 8 extension + 4 descriptor) and SRTP's tag, well under a 1200-byte MTU. */
export const VP8_BYTES_PER_PACKET = 1100;
/** RTP clock for video. */
export const VIDEO_CLOCK_HZ = 90_000;
export const PLAYOUT_DELAY_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay';

/**
 * The payloads of one frame: each a 4-byte descriptor (X=1, S on the first, PartID 0; I=1 with a
 * 15-bit picture id, which libwebrtc's receivers use to spot lost frames) and a slice of the frame.
 */
export function vp8Payloads(frame: Buffer, pictureId: number, maxBytes = VP8_BYTES_PER_PACKET): Buffer[] {
  const out: Buffer[] = [];
  const count = Math.max(1, Math.ceil(frame.length / maxBytes));
  for (let i = 0; i < count; i++) {
    const slice = frame.subarray(i * maxBytes, Math.min(frame.length, (i + 1) * maxBytes));
    const p = Buffer.allocUnsafe(4 + slice.length);
    p[0] = 0x80 | (i === 0 ? 0x10 : 0); // X, and S on the partition's start
    p[1] = 0x80; // I: a picture id follows
    p[2] = 0x80 | ((pictureId >> 8) & 0x7f); // M: 15-bit picture id
    p[3] = pictureId & 0xff;
    slice.copy(p, 4);
    out.push(p);
  }
  return out;
}

/** Where the VP8 frame starts in an RTP payload (after the RFC 7741 descriptor), or -1 if the payload is too short. */
function descriptorLength(payload: Buffer): number {
  if (payload.length < 2) return -1;
  let at = 1;
  if (payload[0]! & 0x80) {
    const x = payload[at++]!;
    if (x & 0x80) at += payload[at]! & 0x80 ? 2 : 1; // picture id
    if (x & 0x40) at++; // TL0PICIDX
    if (x & 0x30) at++; // TID/Y/KEYIDX
  }
  return at < payload.length ? at : -1;
}

/** Whether a VP8 RTP payload starts a keyframe (descriptor's S set, PartID 0, and the frame header's P bit clear). */
export function startsKeyframe(payload: Buffer): boolean {
  if (payload.length < 2 || (payload[0]! & 0x10) === 0 || (payload[0]! & 0x07) !== 0) return false;
  const at = descriptorLength(payload);
  return at > 0 && (payload[at]! & 0x01) === 0;
}

/** The picture size a keyframe's payload carries (RFC 6386 §9.1: after the 3-byte tag and start code), or null. */
export function keyframeSize(payload: Buffer): { width: number; height: number } | null {
  if (!startsKeyframe(payload)) return null;
  const at = descriptorLength(payload);
  if (payload.length < at + 10 || payload[at + 3] !== 0x9d || payload[at + 4] !== 0x01 || payload[at + 5] !== 0x2a) return null;
  return { width: payload.readUInt16LE(at + 6) & 0x3fff, height: payload.readUInt16LE(at + 8) & 0x3fff };
}

export interface RtpHeaderOptions {
  readonly ssrc: number;
  readonly payloadType: number;
  /** The viewer's id for the playout-delay extension (min = max = 0: render at once), or null. */
  readonly playoutDelayId: number | null;
}

/** One outlet's RTP headers: its own sequence numbers (a late joiner starts anywhere). */
export class RtpWriter {
  private seq = Math.floor(Math.random() * 0x10000);

  constructor(private readonly options: RtpHeaderOptions) {}

  /** The stream's SSRC: the one its viewer's receiver reports are about. */
  get ssrc(): number {
    return this.options.ssrc;
  }

  /** A full RTP packet: header (with the playout-delay extension when negotiated) + payload. */
  packet(payload: Buffer, timestamp: number, marker: boolean): Buffer {
    const ext = this.options.playoutDelayId !== null;
    const head = Buffer.alloc(12 + (ext ? 8 : 0));
    head[0] = 0x80 | (ext ? 0x10 : 0);
    head[1] = (marker ? 0x80 : 0) | (this.options.payloadType & 0x7f);
    head.writeUInt16BE(this.seq, 2);
    this.seq = (this.seq + 1) & 0xffff;
    head.writeUInt32BE(timestamp >>> 0, 4);
    head.writeUInt32BE(this.options.ssrc >>> 0, 8);
    if (ext) {
      head.writeUInt16BE(0xbede, 12); // RFC 8285 one-byte header extensions
      head.writeUInt16BE(1, 14); // one 32-bit word follows
      head[16] = ((this.options.playoutDelayId! & 0x0f) << 4) | 2; // id, 3 bytes
      // 17..19: min delay 0, max delay 0 (12 bits each, in 10 ms units)
    }
    return Buffer.concat([head, payload]);
  }
}

/** The payload of an RTP packet (after CSRCs and header extensions), or null if it is not one. */
export function rtpPayload(packet: Buffer): Buffer | null {
  if (packet.length < 12 || (packet[0]! & 0xc0) !== 0x80) return null;
  let at = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (packet.length < at + 4) return null;
    at += 4 + packet.readUInt16BE(at + 2) * 4;
  }
  return at <= packet.length ? packet.subarray(at) : null;
}

/** Keyframe requests in a (compound) RTCP packet: PLI (PT 206, FMT 1) or FIR (PT 206, FMT 4). */
export function asksForKeyframe(rtcp: Buffer): boolean {
  for (let at = 0; at + 4 <= rtcp.length; ) {
    const fmt = rtcp[at]! & 0x1f;
    const pt = rtcp[at + 1]!;
    if ((rtcp[at]! & 0xc0) !== 0x80) return false;
    if (pt === 206 && (fmt === 1 || fmt === 4)) return true;
    at += (rtcp.readUInt16BE(at + 2) + 1) * 4;
  }
  return false;
}

/** Whether a packet on the track is RTCP (RFC 5761: payload types 192-223 share the port). */
export const isRtcp = (b: Buffer): boolean => b.length >= 2 && b[1]! >= 192 && b[1]! <= 223;
