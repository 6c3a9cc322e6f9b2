import type { Result } from '../errors.ts';
import type { VideoRecordOptions } from '../media/video-recorder.ts';
import type { WebRtcOptions } from './webrtc/options.ts';
import type { LiveChart } from '../machines/chart-graph.ts';
import type { TokenVerifier } from '../auth/tokens.ts';

/**
 * Transport settings and their limits. Every limit has a coded error (docs/protocol.md, "Limits").
 */
export interface TransportOptions {
  readonly host: string;
  readonly port: number;
  /** Shared secret a client must present in `auth.token` at the handshake (the LAN's simple mode); off when unset. */
  readonly authToken?: string;
  /** Access tokens (src/auth): signed JWTs with a role, checked at the handshake and per request. */
  readonly tokens?: TokenVerifier;
  /** Connections of one token `sub` at once (besides `maxConnections` for all). */
  readonly maxConnectionsPerSub: number;
  /** Requests per second of one token `sub`, over all its connections (token bucket), and the burst. */
  readonly requestsPerSecondPerSub: number;
  readonly requestBurstPerSub: number;
  /**
   * A second listener serving `/metrics` alone, without credentials, for Prometheus on a private
   * network (with tokens on, the main port's `/metrics` needs an operator token). Off when unset.
   */
  readonly metricsPort?: number;
  /** Its address (default 127.0.0.1). */
  readonly metricsHost?: string;
  /** Origins allowed by CORS for the Socket.IO handshake; empty: same origin only. */
  readonly corsOrigins: readonly string[];
  /**
   * Largest message a client may send (Socket.IO `maxHttpBufferSize`); larger ones close the
   * connection. Raised automatically to fit the model's largest input frame.
   */
  readonly maxPayloadBytes: number;
  /** Largest command (name and JSON arguments); larger ones get `payload_too_large`. */
  readonly maxCommandBytes: number;
  /** Requests per second per connection (token bucket), and the burst it allows. */
  readonly requestsPerSecond: number;
  readonly requestBurst: number;
  /** Input frames per second per connection (token bucket; bursts of twice as many). */
  readonly inputFramesPerSecond: number;
  /** Concurrent connections; more are refused with `too_many_connections`. */
  readonly maxConnections: number;
  /** JPEG quality when a viewer asks for `jpeg` without one. */
  readonly jpegQuality: number;
  /**
   * Admission control for `session:start` (fleet nodes admit only the holder of the armed
   * ticket). Called before the runtime is asked; a refusal is returned to the client as is.
   */
  readonly admit?: (request: { readonly ticket?: string; readonly sub?: string }) => Result;
  /** `switch`: one viewer at a time, a new one takes the stream. `broadcast`: spectators. */
  readonly viewers: 'switch' | 'broadcast';
  /** Viewers at once in broadcast mode, the owner watching included; more get `too_many_viewers`. */
  readonly maxViewers: number;
  /**
   * Record each session's encoded stream into a WebM file in this folder (src/media/video-recorder.ts);
   * needs the room sender (the default `webrtc.sender`), whose encode it reuses. Off when unset.
   */
  readonly recordVideo?: VideoRecordOptions;
  /** WebRTC media (src/transport/webrtc/options.ts has the defaults). */
  readonly webrtc?: Partial<WebRtcOptions>;
  /**
   * Asked synchronously where frames and model messages leave and where commands and input
   * frames enter (fleet nodes: "does this node still hold its user?"). A refusal withholds the
   * frame or message and refuses the request with the gate's error (`lease_lost`).
   */
  readonly gate?: () => Result;
  /** Charts `/chart` shows live beside the runtime's (a fleet node's). */
  readonly charts?: readonly LiveChart[];
}

export const DEFAULT_TRANSPORT: TransportOptions = {
  host: '127.0.0.1',
  port: 3000,
  corsOrigins: [],
  maxPayloadBytes: 1_000_000,
  maxCommandBytes: 16 * 1024,
  requestsPerSecond: 60, // a person's drag on the canvas sends ~60 stamps a second
  requestBurst: 120,
  inputFramesPerSecond: 120,
  maxConnections: 256,
  maxConnectionsPerSub: 8, // a user's page, a second tab, a phone: more is one user holding slots of many
  requestsPerSecondPerSub: 120, // two connections' worth of a drag on the canvas
  requestBurstPerSub: 240,
  jpegQuality: 80,
  viewers: 'switch',
  maxViewers: 16,
};
