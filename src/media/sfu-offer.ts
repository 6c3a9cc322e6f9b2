/**
 * The publisher's side of a peer to an SFU: unlike a viewer (src/media/outlet.ts answers the
 * viewer's offer), an SFU (Janus, or a WHIP endpoint) takes an offer. A node-datachannel peer
 * with one send-only VP8 track offers, with its candidates gathered into the SDP (so neither
 * Janus's REST API nor WHIP needs trickle); once the SFU's answer is applied it is an Outlet like
 * any viewer's, fed the room's encoded frames.
 */
import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import { gatheredDescription, Outlet, reportOutletEvents, type OutletEvents, type OutletOptions } from './outlet.ts';
import { PLAYOUT_DELAY_URI, RtpWriter } from './vp8-rtp.ts';

/** Payload type and extension id we offer; the answer may renumber neither (RFC 3264), but we read them back. */
const VP8_PT = 96;
const PLAYOUT_DELAY_ID = 1;
const MID = '0';

export class OfferingPeer {
  private constructor(
    private readonly pc: PeerConnection,
    private readonly track: Track,
    private readonly ssrc: number,
    /** The offer, candidates included. */
    readonly sdp: string,
  ) {}

  static async create(options: OutletOptions): Promise<OfferingPeer> {
    const pc = new nodeDataChannel.PeerConnection('publisher', {
      iceServers: [],
      disableAutoNegotiation: true,
      enableIceTcp: false,
      ...(options.bindAddress ? { bindAddress: options.bindAddress } : {}),
    });
    try {
      const ssrc = randomInt(1, 0xffffffff);
      const media = new nodeDataChannel.Video(MID, 'SendOnly');
      media.addVP8Codec(VP8_PT);
      media.addSSRC(ssrc, 'framehost', 'framehost', 'video');
      media.parseSdpLine(`a=extmap:${PLAYOUT_DELAY_ID} ${PLAYOUT_DELAY_URI}`);
      const track = pc.addTrack(media);
      track.setMediaHandler(new nodeDataChannel.RtcpNackResponder(options.nackHistory));
      const sdp = await gatheredDescription(pc, 'offer', options.gatherTimeoutMs);
      if (!sdp) throw new Error('node-datachannel made no offer');
      return new OfferingPeer(pc, track, ssrc, sdp);
    } catch (err) {
      pc.close();
      throw err;
    }
  }

  /** Apply the SFU's answer: from now on an Outlet (keyframe requests and state go to `events`). */
  accept(answer: string, events: OutletEvents): Outlet {
    this.pc.setRemoteDescription(answer, 'answer');
    const rtp = new RtpWriter({ ssrc: this.ssrc, payloadType: answeredPayloadType(answer), playoutDelayId: answeredPlayoutDelayId(answer) });
    const outlet = new Outlet(this.pc, this.track, rtp, MID);
    reportOutletEvents(this.pc, this.track, outlet, events);
    return outlet;
  }

  close(): void {
    this.track.close();
    this.pc.close();
  }
}

function answeredPayloadType(sdp: string): number {
  const m = /^a=rtpmap:(\d+) VP8\/90000/im.exec(sdp);
  return m ? Number(m[1]) : VP8_PT;
}

/** The answer's id for the playout-delay extension, or null when the SFU declined it (then we do not send it). */
function answeredPlayoutDelayId(sdp: string): number | null {
  const m = new RegExp(`^a=extmap:(\\d+)(?:/\\S+)? ${PLAYOUT_DELAY_URI.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`, 'm').exec(sdp);
  const id = m ? Number(m[1]) : null;
  return id !== null && id >= 1 && id <= 14 ? id : null;
}
