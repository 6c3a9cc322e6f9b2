/**
 * The one place that loads `@roamhq/wrtc` (libwebrtc for Node). Its own typings re-export the
 * DOM's WebRTC types, which the server's tsconfig does not load, so this file declares the part
 * framehost uses, narrowly. Loaded lazily: a platform without the binary still serves the
 * Socket.IO stream, and the page is told WebRTC is unavailable (it then falls back).
 */
import { createRequire } from 'node:module';
import { errorValue, type ErrorValue } from '../../errors.ts';

import type { IceServer, WebRtcCandidate } from './wire.ts';

export type { IceServer };

export interface SessionDescription {
  readonly type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  readonly sdp: string;
}

export type IceCandidateInit = WebRtcCandidate;

export interface I420Frame {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface WrtcTrack {
  readonly kind: string;
  readonly id: string;
  stop(): void;
}

export interface WrtcEncoding {
  maxBitrate?: number;
  minBitrate?: number;
  maxFramerate?: number;
}
export interface WrtcSendParameters {
  encodings: WrtcEncoding[];
  degradationPreference?: string;
}

export interface WrtcSender {
  readonly track: WrtcTrack | null;
  getParameters(): WrtcSendParameters;
  setParameters(p: WrtcSendParameters): Promise<void>;
  replaceTrack(track: WrtcTrack | null): Promise<void>;
}
export interface WrtcReceiver {
  readonly track: WrtcTrack;
}
export interface WrtcTransceiver {
  readonly mid: string | null;
  readonly sender: WrtcSender;
  readonly receiver: WrtcReceiver;
  direction: string;
}

/** A stats report: a Map of objects keyed by id, each with `type` and numeric fields. */
export type WrtcStats = Map<string, Record<string, unknown>>;

export interface WrtcPeerConnection {
  readonly connectionState: string;
  readonly signalingState: string;
  onicecandidate: ((e: { candidate: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null } | null }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  ontrack: ((e: { track: WrtcTrack; transceiver: WrtcTransceiver }) => void) | null;
  setRemoteDescription(d: SessionDescription): Promise<void>;
  setLocalDescription(d?: SessionDescription): Promise<void>;
  createAnswer(): Promise<SessionDescription>;
  /** The offering side (tests and the bench play the browser with it). */
  createOffer(): Promise<SessionDescription>;
  addTransceiver(trackOrKind: WrtcTrack | 'video', init?: { direction?: string }): WrtcTransceiver;
  addIceCandidate(c: IceCandidateInit): Promise<void>;
  addTrack(track: WrtcTrack): WrtcSender;
  getTransceivers(): WrtcTransceiver[];
  getStats(): Promise<WrtcStats>;
  close(): void;
}

export interface WrtcVideoSource {
  createTrack(): WrtcTrack;
  onFrame(frame: I420Frame): void;
}

export interface WrtcVideoSink {
  onframe: ((e: { frame: I420Frame }) => void) | null;
  stop(): void;
}

export interface Wrtc {
  readonly RTCPeerConnection: new (config: { iceServers: { urls: string | string[]; username?: string; credential?: string }[] }) => WrtcPeerConnection;
  readonly nonstandard: {
    readonly RTCVideoSource: new (init?: { isScreencast?: boolean }) => WrtcVideoSource;
    readonly RTCVideoSink: new (track: WrtcTrack) => WrtcVideoSink;
    rgbaToI420(rgba: I420Frame, i420: I420Frame): void;
    i420ToRgba(i420: I420Frame, rgba: I420Frame): void;
  };
  readonly RTCRtpSender: { getCapabilities(kind: 'video'): { codecs: { mimeType: string }[] } | null };
}

let loaded: Wrtc | ErrorValue | undefined;

/** libwebrtc, or why it cannot be had here (loaded once; the answer is cached). */
export function loadWrtc(): Wrtc | ErrorValue {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('@roamhq/wrtc') as Wrtc;
  } catch (err) {
    loaded = errorValue('webrtc_unavailable', `@roamhq/wrtc did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  return loaded;
}

export const isWrtc = (w: Wrtc | ErrorValue): w is Wrtc => 'RTCPeerConnection' in w;

/** The video codecs this build can send, by name ("VP8", "VP9", "AV1"…), without rtx/red/fec. */
export function videoCodecs(w: Wrtc): string[] {
  const names = (w.RTCRtpSender.getCapabilities('video')?.codecs ?? []).map((c) => c.mimeType.replace(/^video\//i, ''));
  return [...new Set(names.filter((n) => !['rtx', 'red', 'ulpfec', 'flexfec-03'].includes(n.toLowerCase())))];
}
