/**
 * WebRTC settings and their limits (docs/protocol.md, "Limits"). ICE servers come from the command line
 * or the environment and are handed to the page as they are: TURN credentials are the
 * operator's to scope (short-lived ones are best).
 */
import { isIP } from 'node:net';
import type { IceServer } from './wire.ts';
import type { PublishTarget } from '../../media/publish-target.ts';

export interface WebRtcOptions {
  /** Off: `webrtc:offer` answers `webrtc_unavailable` and the page uses Socket.IO frames. */
  readonly enabled: boolean;
  /** STUN/TURN servers for both ends; loopback and LAN need none. */
  readonly iceServers: readonly IceServer[];
  /**
   * The only addresses the server's host candidates may carry (empty: every interface). libwebrtc
   * in wrtc 0.10 gathers on every interface and has no setting to narrow that, so the server signals
   * only these host candidates: a viewer then has no other address of the server to reach.
   */
  readonly iceHostAddresses: readonly string[];
  /**
   * Who encodes: `room` (the default; src/media/: one VP8 encode per rendition for every viewer,
   * sent through node-datachannel; needs the optional node-av) or `wrtc` (libwebrtc: an encoder
   * per peer, VP9 and AV1 too, no GPL code).
   */
  readonly sender: 'wrtc' | 'room';
  /**
   * Room sender: write the playout-delay RTP extension (min = max = 0, render at once) when the
   * viewer's offer has it. false leaves it out; kept for measuring its effect (docs/performance.md).
   */
  readonly playoutDelay: boolean;
  /** Codec the server sends with when the browser offers it (VP8, VP9 or AV1 in this build). */
  readonly codec: string;
  /** Bounds on each sender's bitrate; libwebrtc's bandwidth estimate moves between them. */
  readonly minBitrateKbps: number;
  /** null: scaled to the frame's pixels (src/media/bitrate.ts; ~1,000 kbit/s at 256²). */
  readonly maxBitrateKbps: number | null;
  /** Peer connections on the whole server, and per connection. */
  readonly maxPeers: number;
  /** Offers (new or renegotiation) per connection: a token bucket. */
  readonly offersPerSecond: number;
  readonly offerBurst: number;
  /** Remote ICE candidates per connection per second (bursts of 4×), and per peer in all. */
  readonly candidatesPerSecond: number;
  readonly maxCandidatesPerPeer: number;
  /** Largest SDP a client may send. */
  readonly maxSdpBytes: number;
  /** A peer not connected this long after its answer is closed (`webrtc:closed`, `timeout`). */
  readonly connectTimeoutMs: number;
  /** Applying an offer and creating the answer; longer fails with `timeout`. */
  readonly answerTimeoutMs: number;
  /** How often each peer's stats are read for /metrics. */
  readonly statsIntervalMs: number;
  /** `--publish`: the room's stream also goes to this Janus VideoRoom (src/media/janus/) or WHIP endpoint (src/media/whip/); null: nowhere. */
  readonly publish: PublishTarget | null;
}

export const DEFAULT_WEBRTC: WebRtcOptions = {
  enabled: true,
  iceServers: [],
  iceHostAddresses: [],
  sender: 'room',
  playoutDelay: true,
  codec: 'VP8',
  minBitrateKbps: 100,
  maxBitrateKbps: null,
  maxPeers: 32,
  offersPerSecond: 1,
  offerBurst: 5,
  candidatesPerSecond: 20,
  maxCandidatesPerPeer: 64,
  maxSdpBytes: 32 * 1024,
  connectTimeoutMs: 15_000,
  answerTimeoutMs: 5000,
  statsIntervalMs: 2000,
  publish: null,
};

/**
 * ICE servers from text: `stun:host:3478,turn:host:3478?transport=udp` (comma-separated URLs,
 * sharing one username and credential), or a JSON array of `{ urls, username?, credential? }`.
 */
export function parseIceServers(text: string, username?: string, credential?: string): IceServer[] | string {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      return 'ICE servers: invalid JSON';
    }
    if (!Array.isArray(parsed)) return 'ICE servers: expected an array';
    const out: IceServer[] = [];
    for (const s of parsed as unknown[]) {
      if (typeof s !== 'object' || s === null) return 'ICE servers: each entry is { urls, username?, credential? }';
      const { urls, username: u, credential: c } = s as Record<string, unknown>;
      const list = typeof urls === 'string' ? [urls] : Array.isArray(urls) && urls.every((x) => typeof x === 'string') ? (urls as string[]) : null;
      if (!list || list.length === 0) return 'ICE servers: urls must be a string or strings';
      const bad = list.find((x) => !/^(stun|stuns|turn|turns):/.test(x));
      if (bad) return `ICE servers: ${JSON.stringify(bad.slice(0, 64))} is not a stun: or turn: URL`;
      out.push({ urls: list, ...(typeof u === 'string' ? { username: u } : {}), ...(typeof c === 'string' ? { credential: c } : {}) });
    }
    return out;
  }
  const urls = trimmed.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = urls.find((x) => !/^(stun|stuns|turn|turns):/.test(x));
  if (bad) return `ICE servers: ${JSON.stringify(bad.slice(0, 64))} is not a stun: or turn: URL`;
  return urls.map((u) => ({ urls: u, ...(username ? { username } : {}), ...(credential ? { credential } : {}) }));
}

/** Host addresses from text: `127.0.0.1` or `127.0.0.1,::1` (IP literals; names are not resolved). */
export function parseHostAddresses(text: string): string[] | string {
  const list = text.split(',').map((a) => a.trim()).filter(Boolean);
  const bad = list.find((a) => isIP(a) === 0);
  if (bad !== undefined) return `ICE host addresses: ${JSON.stringify(bad.slice(0, 64))} is not an IP address`;
  return list;
}

/**
 * Whether the server may signal a local candidate: one that is not a host candidate (srflx, relay:
 * they come from the configured STUN/TURN servers), or a host candidate on an allowed address.
 */
export function candidateAllowed(candidate: string, hostAddresses: readonly string[]): boolean {
  if (hostAddresses.length === 0) return true;
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …
  const fields = candidate.replace(/^a=/, '').split(' ');
  if (fields[7] !== 'host') return true;
  return hostAddresses.includes(fields[4] ?? '');
}
