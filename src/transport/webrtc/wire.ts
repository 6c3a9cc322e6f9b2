/**
 * The WebRTC signalling payloads, shared by the server and the page (types only: the page's
 * bundle imports this file). The events themselves are in src/transport/socket/events.ts.
 */

export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

export interface WebRtcCandidate {
  readonly candidate: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
}

/** What the page needs to negotiate: answered by `webrtc:config`. */
export interface WebRtcConfig {
  /** False when this server cannot do WebRTC (then `reason`); the page uses Socket.IO frames. */
  readonly available: boolean;
  readonly reason?: string;
  readonly iceServers: readonly IceServer[];
  /** The codec the server prefers, and those its build can send. */
  readonly codec: string;
  readonly codecs: readonly string[];
  readonly minBitrateKbps: number;
  readonly maxBitrateKbps: number;
}

export interface WebRtcOfferRequest {
  readonly sdp: string;
  /** Renegotiation of an existing peer; absent for a new one (one peer per connection). */
  readonly peerId?: string;
  /** The model's input track that the offer's send section (the camera) feeds. */
  readonly inputTrack?: string;
}

export type { PeerCloseReason } from '../../machines/peer.machine.ts';

/** Per-peer figures, as the server reads them from its sender (also in /metrics). */
export interface WebRtcPeerStats {
  readonly rttMs: number | null;
  readonly bitrateKbps: number;
  readonly fps: number;
  readonly packetsLost: number;
  readonly framesDropped: number;
  readonly framesSent: number;
  readonly codec: string | null;
  /** The room sender's figures from the viewer's last receiver report (absent on the wrtc sender). */
  readonly fractionLost?: number;
  readonly jitterMs?: number | null;
  /** The room sender's rendition this viewer gets now ('top' or 'low'). */
  readonly rendition?: string;
}
