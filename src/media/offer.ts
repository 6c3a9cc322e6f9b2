/**
 * What an outlet needs from a viewer's offer: the video section it receives on (its mid), the
 * payload type the viewer gave VP8, and the id it gave the playout-delay extension (if any).
 * Nothing here throws; a problem is a message for a `bad_sdp` error.
 */
import { PLAYOUT_DELAY_URI } from './vp8-rtp.ts';

export interface VideoOffer {
  readonly mid: string;
  readonly vp8PayloadType: number;
  readonly playoutDelayId: number | null;
}

export function readVideoOffer(sdp: string): VideoOffer | string {
  const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
  for (const section of sections) {
    const lines = section.split(/\r?\n/);
    if (!lines[0]!.startsWith('m=video ')) continue;
    if (!lines.some((l) => l === 'a=recvonly' || l === 'a=sendrecv')) continue;
    const mid = lines.find((l) => l.startsWith('a=mid:'))?.slice(6).trim();
    const vp8 = lines.map((l) => /^a=rtpmap:(\d+) VP8\/90000/i.exec(l)).find((m) => m !== null);
    if (!mid) return 'the video section has no mid';
    if (!vp8) return 'the video section does not offer VP8';
    const ext = lines.map((l) => /^a=extmap:(\d+)(?:\/\S+)? (\S+)/.exec(l)).find((m) => m !== null && m[2] === PLAYOUT_DELAY_URI);
    const id = ext ? Number(ext[1]) : null;
    // The one-byte header form carries ids 1-14.
    return { mid, vp8PayloadType: Number(vp8[1]), playoutDelayId: id !== null && id >= 1 && id <= 14 ? id : null };
  }
  return 'the offer has no video section to receive on (direction recvonly)';
}

/** A video section the viewer sends on (its camera): its mid and the payload type it gave VP8. */
export interface SendingOffer {
  readonly mid: string;
  readonly vp8PayloadType: number;
}

/**
 * The offer's first video section the viewer sends on only (`a=sendonly`, the page's camera), or
 * null when it has none (or it offers no VP8, which the server cannot decode). A `sendrecv`
 * section is the one the viewer's picture goes out on: its camera is not taken from it.
 */
export function readSendingOffer(sdp: string): SendingOffer | null {
  for (const section of sdp.split(/\r?\n(?=m=)/).slice(1)) {
    const lines = section.split(/\r?\n/);
    if (!lines[0]!.startsWith('m=video ') || lines[0]!.startsWith('m=video 0 ') || !lines.includes('a=sendonly')) continue;
    const mid = lines.find((l) => l.startsWith('a=mid:'))?.slice(6).trim();
    const vp8 = lines.map((l) => /^a=rtpmap:(\d+) VP8\/90000/i.exec(l)).find((m) => m !== null);
    if (mid && vp8) return { mid, vp8PayloadType: Number(vp8[1]) };
  }
  return null;
}
