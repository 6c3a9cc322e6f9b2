/**
 * WHEP (WebRTC-HTTP egress, draft-ietf-wish-whep): any standard player watches the session
 * without framehost's client. `POST /whep` with an SDP offer (`Content-Type: application/sdp`)
 * gets `201`, the answer and `Location: /whep/<id>`; `DELETE /whep/<id>` ends that viewer.
 *
 * A WHEP viewer is a watcher (src/transport/socket/stream.ts): a spectator that never controls, so it
 * needs broadcast mode and counts against `maxViewers`; its peer is a room peer (the encode-once
 * sender, node-datachannel), counted against `maxPeers`. A server on the wrtc sender refuses WHEP
 * (`webrtc_unavailable`): wrtc and node-datachannel were not cleared to share a process. The answer
 * carries the server's candidates; trickle (`PATCH`) is answered 405, which the draft allows, and
 * ICE then finds the player from its connectivity checks.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorValue, type ErrorCode, type ErrorValue } from '../../errors.ts';
import { authorizeRequest, type Access } from '../../auth/access.ts';
import { TokenBucket } from '../socket/rate-limit.ts';
import type { StreamRouter } from '../socket/stream.ts';
import type { Media } from './signalling.ts';

/** New WHEP viewers per second for the whole server (a resource is a peer: not free to make). */
export const WHEP_OFFERS_PER_SECOND = 5;
export const WHEP_OFFER_BURST = 10;

const RESOURCE = /^\/whep\/([0-9a-f-]{36})$/;

/** The HTTP status of each refusal WHEP answers with. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  bad_request: 400,
  bad_sdp: 400,
  unknown_peer: 404,
  payload_too_large: 413,
  rate_limited: 429,
  too_many_viewers: 503,
  too_many_peers: 503,
  webrtc_unavailable: 503,
};

export interface WhepDeps {
  readonly access: Access;
  /** Pages on these origins may use WHEP from the browser (`--cors-origin`); the same origin always may. */
  readonly corsOrigins: readonly string[];
  readonly log: Logger;
  readonly maxSdpBytes: number;
  /** Count a refusal in /metrics (framehost_command_errors_total). */
  readonly refused: (code: ErrorCode) => void;
}

/** The parts of the protocol WHEP uses, bound once the Socket.IO side exists. */
export interface WhepTarget {
  readonly media: Pick<Media, 'openWatcher' | 'closeWatcher'>;
  readonly stream: Pick<StreamRouter, 'mayWatch' | 'watch' | 'unwatch'>;
}

function refuse(res: ServerResponse, error: ErrorValue, extra: Record<string, string> = {}): void {
  res.writeHead(STATUS[error.code] ?? 500, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...extra });
  res.end(JSON.stringify({ error }));
}

/**
 * How much of a refused (too large) offer is still read and dropped after the 413, and for how
 * long: closing a socket with unread bytes in it makes the kernel send a reset, which can reach
 * the client before the 413 does. Past either bound the sender is not a player, and is cut off.
 */
const DRAIN_MAX_BYTES = 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/** Read and drop the rest of a refused body, up to the drain bounds; then cut the connection. */
function drain(req: IncomingMessage, alreadyRead: number): void {
  let dropped = alreadyRead;
  const cut = (): void => void req.socket.destroy();
  const timer = setTimeout(cut, DRAIN_MAX_MS).unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DRAIN_MAX_BYTES) cut();
  });
  // Drained (or gone): a later request on the same keep-alive connection must not be cut.
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/**
 * The request's body, or null as soon as it (or its declared Content-Length) passes `max` bytes:
 * the caller answers 413 at once, and the rest is drained (drain) so that the client reads it.
 */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  if (Number(req.headers['content-length'] ?? 0) > max) {
    drain(req, 0);
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      req.off('data', onData);
      drain(req, size);
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class WhepEndpoint {
  private target: WhepTarget | null = null;
  private readonly offers = new TokenBucket(WHEP_OFFERS_PER_SECOND, WHEP_OFFER_BURST);

  constructor(private readonly deps: WhepDeps) {}

  /** The HTTP server exists before the protocol: the protocol's parts are bound once, after. */
  bind(target: WhepTarget): void {
    this.target = target;
  }

  /** Whether the path is WHEP's (`/whep` or `/whep/<id>`). */
  static handles(path: string): boolean {
    return path === '/whep' || path.startsWith('/whep/');
  }

  /**
   * A player on another origin POSTs `application/sdp` with a token: a preflighted request. An
   * allowed origin gets the CORS headers (and `Location` exposed to its script); others get none.
   */
  private cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !this.deps.corsOrigins.includes(origin)) return;
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    res.setHeader('access-control-expose-headers', 'Location');
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    this.cors(req, res);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'POST, DELETE, PATCH', 'access-control-allow-headers': 'Content-Type, Authorization, If-Match', 'access-control-max-age': '600' });
      return void res.end();
    }
    const target = this.target;
    if (!target) return this.refuse(res, errorValue('webrtc_unavailable', 'the server is starting'));
    if (path === '/whep') {
      if (req.method !== 'POST') return this.refuse(res, errorValue('bad_request', 'POST an SDP offer to /whep'), { allow: 'POST' });
      return this.post(req, res, target);
    }
    const id = RESOURCE.exec(path)?.[1];
    if (!id) return this.refuse(res, errorValue('unknown_peer', 'no such WHEP resource'));
    if (req.method === 'PATCH') return void res.writeHead(405, { allow: 'DELETE' }).end(); // no trickle: the answer has the candidates
    if (req.method !== 'DELETE') return this.refuse(res, errorValue('bad_request', 'a WHEP resource takes DELETE'), { allow: 'DELETE' });
    if (!(await authorizeRequest(this.deps.access, req, res, 'watch', { log: this.deps.log }))) return;
    if (!target.media.closeWatcher(id)) return this.refuse(res, errorValue('unknown_peer', 'no such WHEP resource (ended, or never made)'));
    res.writeHead(200, { 'cache-control': 'no-store' }).end();
  }

  private async post(req: IncomingMessage, res: ServerResponse, target: WhepTarget): Promise<void> {
    if (!(await authorizeRequest(this.deps.access, req, res, 'watch', { log: this.deps.log }))) return;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/sdp') return this.refuse(res, errorValue('bad_sdp', 'the offer must be sent as Content-Type: application/sdp'));
    const sdp = await readBody(req, this.deps.maxSdpBytes);
    if (sdp === null) return this.refuse(res, errorValue('payload_too_large', `an offer of at most ${this.deps.maxSdpBytes} bytes`));
    if (!this.offers.take()) return this.refuse(res, errorValue('rate_limited', `more than ${WHEP_OFFERS_PER_SECOND} WHEP offers/s on this server`), { 'retry-after': '1' });
    // Refused before a peer is made: a viewer that may not watch costs nothing.
    const may = target.stream.mayWatch();
    if (!may.ok) return this.refuse(res, may.error);
    const opened = await target.media.openWatcher(sdp, (peerId) => target.stream.unwatch(peerId));
    if (!opened.ok) return this.refuse(res, opened.error);
    const watching = target.stream.watch(opened.peerId, opened.sink);
    if (!watching.ok) {
      opened.sink.close(); // another viewer took the last place while this one was answered
      return this.refuse(res, watching.error);
    }
    this.deps.log.info({ peer: opened.peerId, viewer: 'whep' }, 'WHEP viewer watching');
    res.writeHead(201, { 'content-type': 'application/sdp', location: `/whep/${opened.peerId}`, 'cache-control': 'no-store' });
    res.end(opened.sdp);
  }

  private refuse(res: ServerResponse, error: ErrorValue, extra: Record<string, string> = {}): void {
    this.deps.refused(error.code);
    this.deps.log.info({ code: error.code, why: error.message, viewer: 'whep' }, 'WHEP request refused');
    refuse(res, error, extra);
  }
}
