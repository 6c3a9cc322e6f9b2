/**
 * One connection's signalling: the `webrtc:*` requests of its socket, each validated, rate
 * limited and acked with a result; a refusal is counted, logged and leaves its peer as it was.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import { fail, type ErrorCode, type ErrorValue, type Result } from '../../errors.ts';
import type { FramePixels } from '../../media/bitrate.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from '../socket/events.ts';
import { TokenBucket } from '../socket/rate-limit.ts';
import { isPlainObject } from '../socket/validate.ts';
import type { WebRtcOptions } from './options.ts';
import { MediaPeer, type PeerCloseReason, type PeerEvents } from './peer.ts';
import { isPeer, type AnyPeer, type PeerRoster } from './peer-roster.ts';
import { openRoomPeer, type PeerBook, type RoomLoader } from './room-peer.ts';
import { checkOffer, NO_RECEIVE_SECTION, receiveSection } from './sdp.ts';
import type { WebRtcCandidate, WebRtcConfig } from './wire.ts';
import { isWrtc, type Wrtc } from './wrtc.ts';

export type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** What every connection's signalling shares (made once by createMedia). */
export interface SignallingDeps {
  readonly runtime: Runtime;
  readonly options: WebRtcOptions;
  readonly roster: PeerRoster;
  readonly rooms: RoomLoader;
  readonly pixels: FramePixels;
  readonly refused: (code: ErrorCode) => void;
  /** libwebrtc, or why it is unavailable. */
  readonly wrtc: () => Wrtc | ErrorValue;
  readonly config: () => WebRtcConfig;
}

type SignallingEvent = 'webrtc:config' | 'webrtc:offer' | 'webrtc:candidate' | 'webrtc:close';

type Refusal = ReturnType<typeof fail>;
const bad = (detail: string): Refusal => fail('bad_request', detail);
const OTHER_REQUESTS_PER_SECOND = 10;

/** The input track each peer's browser track feeds (set by its offer). */
const inputOf = new WeakMap<AnyPeer, string>();

function checkCandidate(c: unknown): WebRtcCandidate | null | string {
  if (c === null) return null;
  if (!isPlainObject(c)) return 'candidate must be { candidate, sdpMid?, sdpMLineIndex? } or null';
  const { candidate, sdpMid, sdpMLineIndex } = c;
  if (typeof candidate !== 'string' || candidate.length > 1024) return 'candidate.candidate must be a string of at most 1024 characters';
  if (sdpMid !== undefined && sdpMid !== null && (typeof sdpMid !== 'string' || sdpMid.length > 64)) return 'candidate.sdpMid must be a short string';
  if (sdpMLineIndex !== undefined && sdpMLineIndex !== null && (!Number.isInteger(sdpMLineIndex) || (sdpMLineIndex as number) < 0 || (sdpMLineIndex as number) > 16)) {
    return 'candidate.sdpMLineIndex must be an integer 0..16';
  }
  return { candidate, sdpMid: (sdpMid as string | null | undefined) ?? null, sdpMLineIndex: (sdpMLineIndex as number | null | undefined) ?? null };
}

/** The `webrtc:*` handlers of one socket, and the peer it may own. */
export class ConnectionSignalling {
  readonly #log: Logger;
  readonly #offers: TokenBucket;
  readonly #candidates: TokenBucket;
  /** webrtc:config and webrtc:close: cheap, but not unbounded. */
  readonly #others = new TokenBucket(OTHER_REQUESTS_PER_SECOND, OTHER_REQUESTS_PER_SECOND * 2);

  constructor(
    private readonly deps: SignallingDeps,
    private readonly socket: FramehostSocket,
    private readonly identity: () => string,
    log: Logger,
  ) {
    this.#log = log.child({ socket: socket.id, component: 'webrtc' });
    this.#offers = new TokenBucket(deps.options.offersPerSecond, deps.options.offerBurst);
    this.#candidates = new TokenBucket(deps.options.candidatesPerSecond, deps.options.candidatesPerSecond * 4);
  }

  /** Listen to the socket's requests; its peer closes when it disconnects. */
  listen(): void {
    this.handle('webrtc:config', (req) => this.config(req));
    this.handle('webrtc:offer', (req) => this.offer(req));
    this.handle('webrtc:candidate', (req) => this.candidate(req));
    this.handle('webrtc:close', (req) => this.close(req));
    this.socket.on('disconnect', () => this.deps.roster.of(this.socket.id)?.close('disconnected'));
  }

  private handle(event: SignallingEvent, fn: (req: unknown) => Result | Promise<Result>): void {
    const clog = this.#log;
    this.socket.on(event, ((req: unknown, ack: unknown) => {
      if (typeof req === 'function' && ack === undefined) [req, ack] = [undefined, req];
      if (typeof ack !== 'function') {
        clog.warn({ event }, 'request without acknowledgement ignored');
        return;
      }
      Promise.resolve()
        .then(() => fn(req))
        .catch((err: unknown) => {
          clog.error({ err, event }, 'webrtc handler threw');
          return fail('internal');
        })
        .then((result) => this.reply(event, result, ack as (r: Result) => void));
    }) as never);
  }

  private reply(event: SignallingEvent, result: Result, ack: (r: Result) => void): void {
    if (!result.ok) {
      this.deps.refused(result.error.code);
      this.#log.info({ event, code: result.error.code, message: result.error.message }, 'request refused');
    }
    try {
      ack(result);
    } catch (err) {
      this.#log.warn({ err, event }, 'acknowledgement failed');
    }
  }

  private limited(): Result {
    return fail('rate_limited', `more than ${OTHER_REQUESTS_PER_SECOND} webrtc:config/close requests/s`);
  }

  /** The peer `peerId` if this connection owns it; else why not. */
  private own(peerId: unknown): AnyPeer | Refusal {
    if (typeof peerId !== 'string' || peerId.length > 64) return bad('peerId must be a string');
    const peer = this.deps.roster.ownedBy(peerId, this.socket.id);
    return peer ?? fail('unknown_peer', `no peer ${JSON.stringify(peerId.slice(0, 40))} on this connection`);
  }

  private config(req: unknown): Result {
    if (!this.#others.take()) return this.limited();
    return req === undefined || req === null || isPlainObject(req) ? { ok: true, ...this.deps.config() } : bad('the request must be an object');
  }

  private async offer(req: unknown): Promise<Result> {
    const { options, runtime } = this.deps;
    if (!isPlainObject(req)) return bad('an offer is { sdp, peerId?, inputTrack? }');
    if (!this.#offers.take()) return fail('rate_limited', `more than ${options.offersPerSecond} offers/s (bursts of ${options.offerBurst})`);
    const room = options.enabled && options.sender === 'room';
    const w = room ? null : this.deps.wrtc();
    if (w && !isWrtc(w)) return { ok: false, error: w };
    const { sdp, peerId, inputTrack } = req;
    if (inputTrack !== undefined && (typeof inputTrack !== 'string' || !Object.hasOwn(runtime.capabilities.inputs, inputTrack))) {
      return fail('unknown_track', typeof inputTrack === 'string' ? JSON.stringify(inputTrack.slice(0, 64)) : 'inputTrack must be a string');
    }
    if (peerId !== undefined) return this.renegotiate(peerId, sdp, inputTrack);
    // A new peer: check what is cheap to check before creating one.
    const checked = checkOffer(sdp, options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    if (!receiveSection(checked.sections)) return fail('bad_sdp', NO_RECEIVE_SECTION);
    if (this.deps.roster.of(this.socket.id)) return fail('too_many_peers', 'one peer per connection; renegotiate it with its peerId, or close it first');
    if (this.deps.roster.full) return fail('too_many_peers', `limit ${options.maxPeers}`);
    if (!w) return openRoomPeer(this.deps.rooms, options, this.roomBook(inputTrack), this.#log, sdp);
    return this.openMediaPeer(w, sdp, inputTrack);
  }

  private async renegotiate(peerId: unknown, sdp: unknown, inputTrack: unknown): Promise<Result<{ peerId: string; sdp: string }>> {
    const peer = this.own(peerId);
    if (!isPeer(peer)) return peer;
    if (typeof inputTrack === 'string') inputOf.set(peer, inputTrack);
    const r = await peer.answer(sdp);
    return r.ok ? { ok: true, peerId: peer.id, sdp: r.sdp } : r;
  }

  private async openMediaPeer(w: Wrtc, sdp: unknown, inputTrack: unknown): Promise<Result<{ peerId: string; sdp: string }>> {
    const { roster, options } = this.deps;
    const events = new MediaPeerEvents(this.deps, this.socket, this.identity, this.#log);
    const peer = new MediaPeer(w, options, events, this.#log, this.deps.pixels);
    events.bind(peer);
    if (typeof inputTrack === 'string') inputOf.set(peer, inputTrack);
    roster.add(peer, this.socket.id);
    const r = await peer.answer(sdp);
    if (!r.ok) {
      peer.close('closed'); // a peer that never answered: as if the offer had not come
      return r;
    }
    // Counted once answered: an offer libwebrtc refuses leaves peers_opened_total as it was.
    roster.answered();
    events.markAnswered();
    this.#log.info({ peer: peer.id, codec: peer.codec }, 'peer answered');
    return { ok: true, peerId: peer.id, sdp: r.sdp };
  }

  private async candidate(req: unknown): Promise<Result> {
    if (!isPlainObject(req)) return bad('a candidate is { peerId, candidate }');
    if (!this.#candidates.take()) return fail('rate_limited', `more than ${this.deps.options.candidatesPerSecond} candidates/s`);
    const peer = this.own(req.peerId);
    if (!isPeer(peer)) return peer;
    const c = checkCandidate(req.candidate);
    if (typeof c === 'string') return bad(c);
    return peer.addCandidate(c);
  }

  private close(req: unknown): Result {
    if (!this.#others.take()) return this.limited();
    if (!isPlainObject(req)) return bad('close is { peerId }');
    const peer = this.own(req.peerId);
    if (!isPeer(peer)) return peer;
    peer.close('closed');
    return { ok: true };
  }

  /** The book a room peer of this connection is kept in: the same roster, notices and camera input as a MediaPeer's. */
  private roomBook(inputTrack: unknown): PeerBook {
    const { roster, runtime } = this.deps;
    const notices = { last: 0 };
    return {
      add: (peer) => {
        if (typeof inputTrack === 'string') inputOf.set(peer, inputTrack);
        roster.add(peer, this.socket.id);
      },
      input: (peer, frame) => publishInput(this.deps, this.socket, this.identity, this.#log, inputOf.get(peer), frame, notices),
      inputSize: (peer) => {
        const track = inputOf.get(peer);
        const spec = track === undefined ? undefined : runtime.capabilities.inputs[track];
        return spec ? { width: spec.width, height: spec.height } : null;
      },
      answered: () => roster.answered(),
      closed: (peer, reason) => {
        roster.forget(peer, this.socket.id);
        this.#log.info({ peer: peer.id, reason }, 'peer closed');
        if (peer.answered && this.socket.connected && reason !== 'disconnected') this.socket.emit('webrtc:closed', { peerId: peer.id, reason });
      },
    };
  }
}

/** What a MediaPeer tells its connection: candidates, its close, and its browser track's frames as input. */
class MediaPeerEvents implements PeerEvents {
  #peer: MediaPeer | undefined;
  /** Answered once: a peer that never was closes without telling the page. */
  #answered = false;
  /** When a refused input frame was last told (at most one notice a second). */
  readonly #notices = { last: 0 };

  constructor(
    private readonly deps: SignallingDeps,
    private readonly socket: FramehostSocket,
    private readonly identity: () => string,
    private readonly log: Logger,
  ) {}

  /** The peer these events are of (made after them: it takes them in its constructor). */
  bind(peer: MediaPeer): void {
    this.#peer = peer;
  }

  /** Its first offer was answered: from now on its close is told to the page. */
  markAnswered(): void {
    this.#answered = true;
  }

  candidate(candidate: Parameters<PeerEvents['candidate']>[0]): void {
    this.socket.emit('webrtc:candidate', { peerId: this.#peer!.id, candidate });
  }

  closed(reason: PeerCloseReason): void {
    const peer = this.#peer!;
    this.deps.roster.forget(peer, this.socket.id);
    this.log.info({ peer: peer.id, reason }, 'peer closed');
    if (this.#answered && this.socket.connected && reason !== 'disconnected') this.socket.emit('webrtc:closed', { peerId: peer.id, reason });
  }

  input(frame: Parameters<PeerEvents['input']>[0]): void {
    publishInput(this.deps, this.socket, this.identity, this.log, inputOf.get(this.#peer!), frame, this.#notices);
  }
}

/**
 * A decoded frame of a peer's browser track into the model's input track its offer named (either
 * sender: MediaPeer's RTCVideoSink, or a room peer's inlet), as `input:frame` would: the runtime's
 * rules (owner only, a running session, the track's size and format); a refusal is counted and told
 * as `input:rejected`, at most once a second.
 */
function publishInput(
  deps: SignallingDeps,
  socket: FramehostSocket,
  identity: () => string,
  log: Logger,
  track: string | undefined,
  frame: { data: Uint8Array; width: number; height: number },
  notices: { last: number },
): void {
  const { runtime } = deps;
  if (!track) return;
  const spec = runtime.capabilities.inputs[track]!;
  let data = frame.data;
  if (spec.format === 'rgb') {
    data = new Uint8Array(frame.width * frame.height * 3);
    for (let p = 0; p < frame.width * frame.height; p++) data.set(frame.data.subarray(p * 4, p * 4 + 3), p * 3);
  }
  const r = runtime.publish(track, { data, width: frame.width, height: frame.height, format: spec.format }, { owner: identity() });
  if (!r.ok && Date.now() - notices.last > 1000) {
    notices.last = Date.now();
    deps.refused(r.error.code);
    log.info({ code: r.error.code }, 'webrtc input frame refused');
    socket.emit('input:rejected', { track, error: r.error });
  }
}
