/**
 * The Socket.IO protocol: one typed event map, shared by the server and every client
 * (socket.io's `typed-events.ts` pattern). Types do not replace validation: the server checks
 * every payload (src/transport/socket/validate.ts) before anything reaches the chart.
 */
import type { ErrorValue, Result } from '../../errors.ts';
import type { EndReason } from '../../machines/types.ts';
import type { Phase } from '../../machines/phase.ts';
import type { Capabilities } from '../../model/capabilities.ts';
import type { JsonValue } from '../../model/api.ts';
import type { Principal, Right } from '../../auth/principal.ts';
import type { ControlSnapshot } from '../../model/controls.ts';
import type { PeerCloseReason, WebRtcCandidate, WebRtcConfig, WebRtcOfferRequest } from '../webrtc/wire.ts';

/**
 * How frames travel to a viewer: raw pixels (loopback, LAN) or JPEG (remote viewers) as
 * `frame` events, or `webrtc`: a video track on the connection's peer (negotiate it first).
 */
export type Encoding = 'raw' | 'jpeg' | 'webrtc';

/**
 * Flow control of the stream. `socket`: a frame is written when the socket has flushed the
 * last one (works with any client; the kernel's socket buffers may still hold a few frames).
 * `ack`: the client acknowledges every frame (the typed client does) and at most
 * `FRAME_ACK_WINDOW` frames are unacknowledged, which bounds latency on any link.
 */
export type Flow = 'socket' | 'ack';
export const FRAME_ACK_WINDOW = 2;

export interface FrameMeta {
  readonly sessionId: string;
  /** Index of the frame in its session; gaps are frames dropped for this viewer. */
  readonly seq: number;
  readonly width: number;
  readonly height: number;
  /** Pixel layout of the payload: `rgba`/`rgb` bytes, or a `jpeg` file. */
  readonly format: 'rgba' | 'rgb' | 'jpeg';
  readonly count: number;
  /** When the model emitted the frame, ms since the epoch. */
  readonly t: number;
  /** ONNX Runtime time spent on this frame, ms. */
  readonly inferMs: number;
  /** Frames dropped for this viewer so far (newest frame wins). */
  readonly dropped: number;
}

export interface StartRequest {
  /** Fleet nodes: the ticket the gateway issued for this node (see src/fleet). */
  readonly ticket?: string;
  /** Encoding for the starting client's own stream (it becomes the viewer). Default raw. */
  readonly encoding?: Encoding;
  /** JPEG quality 1-100 (default 80). */
  readonly quality?: number;
  /** Default `socket`; the typed client asks for `ack`. */
  readonly flow?: Flow;
}
export interface AttachRequest {
  readonly encoding?: Encoding;
  readonly quality?: number;
  readonly flow?: Flow;
}
export interface CommandRequest {
  readonly name: string;
  readonly args?: Readonly<Record<string, unknown>>;
}
export interface ResumeRequest {
  /**
   * The token that `session:start` returned: proof of ownership after a reconnect. Optional for
   * a connection with an access token: its `sub` proves the session is its own.
   */
  readonly token?: string;
}

/** Describes the bytes of one input frame (`input:frame`). */
export interface InputMeta {
  readonly track: string;
  readonly width: number;
  readonly height: number;
  readonly format: 'rgba' | 'rgb';
}

/**
 * The running session as every client may see it (the `capabilities` ack and `session:update`):
 * whether its owner is connected, and the command state the controls show.
 */
export interface SessionView {
  readonly id: string;
  readonly ownerAway: boolean;
  /** While the owner is away: ms until the orphan timeout stops the session (relative: clocks differ). */
  readonly orphanMsLeft: number | null;
  /** Per command, its arguments as last accepted (src/model/controls.ts); absent: as the session began. */
  readonly controls: ControlSnapshot;
}

/**
 * This connection as the server admitted it: what its credential allows (`play`, `watch`,
 * `observe`) and its user id (`sub` of an access token; null without tokens). A page uses it to
 * disable what would be refused and to take back its user's ride by `sub`.
 */
export interface ConnectionView {
  readonly rights: readonly Right[];
  readonly sub: string | null;
}

/** The `capabilities` ack: the model's commands and inputs, the runtime's phase, the session, this connection. */
export type CapabilitiesReply = Capabilities & { state: Phase; session: SessionView | null; you: ConnectionView };

export type Ack<T extends object = object> = (result: Result<T>) => void;

export interface ClientToServerEvents {
  'session:start': (request: StartRequest, ack: Ack<{ sessionId: string; token: string }>) => void;
  'session:stop': (request: object, ack: Ack) => void;
  'session:resume': (request: ResumeRequest, ack: Ack<{ sessionId: string }>) => void;
  'session:command': (request: CommandRequest, ack: Ack<{ requestId: string }>) => void;
  'stream:attach': (request: AttachRequest, ack: Ack<{ sessionId: string | null }>) => void;
  'stream:detach': (request: object, ack: Ack) => void;
  capabilities: (request: object, ack: Ack<CapabilitiesReply>) => void;
  /** The owner publishes a frame on an input track; the ack is optional (see input:rejected). */
  'input:frame': (meta: InputMeta, data: Uint8Array, ack?: Ack) => void;
  // WebRTC signalling (src/transport/webrtc): the page offers, the server answers in the ack.
  'webrtc:config': (request: object, ack: Ack<WebRtcConfig>) => void;
  'webrtc:offer': (request: WebRtcOfferRequest, ack: Ack<{ peerId: string; sdp: string }>) => void;
  'webrtc:candidate': (request: { peerId: string; candidate: WebRtcCandidate | null }, ack: Ack) => void;
  'webrtc:close': (request: { peerId: string }, ack: Ack) => void;
}

export interface ServerToClientEvents {
  /** With flow `ack`, the client must call `ack` once it has taken the frame. */
  frame: (meta: FrameMeta, data: Uint8Array, ack?: () => void) => void;
  message: (payload: { sessionId: string; data: JsonValue }) => void;
  state: (payload: { state: Phase }) => void;
  'session:ended': (payload: { sessionId: string; reason: EndReason; error?: ErrorValue }) => void;
  /** To every connection: a session began, its owner left or came back, or a command moved its command state. */
  'session:update': (payload: SessionView) => void;
  'stream:detached': (payload: { reason: 'superseded' | 'detached' }) => void;
  'command:failed': (payload: { requestId: string; error: ErrorValue }) => void;
  /** An input frame sent without an ack was refused (at most one notice a second). */
  'input:rejected': (payload: { track: string; error: ErrorValue }) => void;
  /** The server's ICE candidates for the page's peer (null: gathering complete). */
  'webrtc:candidate': (payload: { peerId: string; candidate: WebRtcCandidate | null }) => void;
  /** The server closed the peer (it failed, did not connect in time, or the server is closing). */
  'webrtc:closed': (payload: { peerId: string; reason: PeerCloseReason }) => void;
}

/** The client-to-server event names, for the unknown-event check. */
export const CLIENT_EVENTS: readonly (keyof ClientToServerEvents)[] = [
  'session:start',
  'session:stop',
  'session:resume',
  'session:command',
  'stream:attach',
  'stream:detach',
  'capabilities',
  'input:frame',
  'webrtc:config',
  'webrtc:offer',
  'webrtc:candidate',
  'webrtc:close',
];

/** What the server keeps per socket (socket.data). */
export interface SocketData {
  /** Who connected (set by the handshake; src/auth). */
  principal: Principal;
  /** The chart's owner id when this socket controls the session (set by start or resume). */
  ownerId: string | null;
}
