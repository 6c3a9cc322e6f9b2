/**
 * WebRTC settings and their limits (README, "Limits"). ICE servers come from the command line
 * or the environment and are handed to the page as they are: TURN credentials are the
 * operator's to scope (short-lived ones are best).
 */
import type { IceServer } from './wire.ts';

export interface WebRtcOptions {
  /** Off: `webrtc:offer` answers `webrtc_unavailable` and the page uses Socket.IO frames. */
  readonly enabled: boolean;
  /** STUN/TURN servers for both ends; loopback and LAN need none. */
  readonly iceServers: readonly IceServer[];
  /** Codec the server sends with when the browser offers it (VP8, VP9 or AV1 in this build). */
  readonly codec: string;
  /** Bounds on each sender's bitrate; libwebrtc's bandwidth estimate moves between them. */
  readonly minBitrateKbps: number;
  readonly maxBitrateKbps: number;
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
}

export const DEFAULT_WEBRTC: WebRtcOptions = {
  enabled: true,
  iceServers: [],
  codec: 'VP8',
  minBitrateKbps: 100,
  maxBitrateKbps: 4000,
  maxPeers: 32,
  offersPerSecond: 1,
  offerBurst: 5,
  candidatesPerSecond: 20,
  maxCandidatesPerPeer: 64,
  maxSdpBytes: 32 * 1024,
  connectTimeoutMs: 15_000,
  answerTimeoutMs: 5000,
  statsIntervalMs: 2000,
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
