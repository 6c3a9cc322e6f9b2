/**
 * WebRTC signalling over the connection's Socket.IO socket, and the server's peers.
 *
 * The page asks `webrtc:config` (ICE servers, codecs), offers with `webrtc:offer` and gets the
 * answer in the ack; candidates trickle both ways as `webrtc:candidate`. A connection holds at
 * most one peer; the server at most `maxPeers`. Every refusal is a coded error to the sender,
 * logged, and leaves every peer as it was: a bad offer for a new peer creates none, a bad
 * renegotiation keeps the peer's current session. A connection that goes away closes its peer.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorValue, fail, type ErrorCode, type ErrorValue, type Result } from '../../errors.ts';
import type { Runtime, RuntimeFrame } from '../../runtime.ts';
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from '../events.ts';
import { TokenBucket } from '../rate-limit.ts';
import { isPlainObject } from '../validate.ts';
import { MediaPeer } from './peer.ts';
import { openRoomPeer, RoomLoader, RoomPeer, type PeerBook } from './room-peer.ts';
import type { MediaRoom } from '../../media/room.ts';
import { createWebRtcMetrics } from './metrics.ts';
import { FramePixels } from '../../media/bitrate.ts';
import type { WebRtcOptions } from './options.ts';
import { checkOffer, NO_RECEIVE_SECTION, receiveSection } from './sdp.ts';
import type { WebRtcCandidate, WebRtcConfig } from './wire.ts';
import { isWrtc, loadWrtc, videoCodecs, type Wrtc } from './wrtc.ts';

type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** What the stream router feeds: frames go to the peer of `socket` while the sink is open. */
export interface MediaSink {
  readonly socket: FramehostSocket;
  readonly peerId: string;
  offer(frame: RuntimeFrame): void;
  close(): void;
}

export interface MediaDeps {
  readonly runtime: Runtime;
  readonly options: WebRtcOptions;
  readonly log: Logger;
  readonly registry: Registry;
  /** Count a refusal in /metrics (framehost_command_errors_total). */
  readonly refused: (code: ErrorCode) => void;
}

export interface Media {
  /** Signalling handlers for one connection; its peer is closed when it disconnects. */
  attach(socket: FramehostSocket, identity: () => string): void;
  /** A sink on the connection's peer, for `encoding: 'webrtc'`. */
  sinkFor(socket: FramehostSocket): MediaSink | ErrorValue;
  /**
   * A peer for a viewer without a connection (WHEP): always the room sender, whose answer it
   * returns with a sink of its frames; `closed` tells when the peer ends, for whatever reason.
   */
  openWatcher(sdp: string, closed: (peerId: string) => void): Promise<Result<{ peerId: string; sdp: string; sink: { offer(frame: RuntimeFrame): void; close(): void } }>>;
  /** End a watcher's peer (WHEP's DELETE); false when there is no such watcher. */
  closeWatcher(peerId: string): boolean;
  /** The server's media room (loaded on first use), for recordings; or why it cannot load. */
  room(): Promise<MediaRoom | ErrorValue>;
  /** Open peers (for tests and the soak). */
  count(): number;
  close(): void;
}

const bad = (detail: string): Result => fail('bad_request', detail);
/** A viewer's peer: libwebrtc's own encoder (MediaPeer) or an outlet of the media room (RoomPeer). */
type AnyPeer = MediaPeer | RoomPeer;
const isPeer = (x: AnyPeer | Result): x is AnyPeer => x instanceof MediaPeer || x instanceof RoomPeer;
const OTHER_REQUESTS_PER_SECOND = 10;
/** The owner recorded for a watcher's peer: no Socket.IO id is this short. */
const WATCHER = 'whep';

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

export function createMedia(deps: MediaDeps): Media {
  const { runtime, options, log, refused } = deps;
  const rooms = new RoomLoader(options);
  const metrics = createWebRtcMetrics(deps.registry, () => rooms.counts());
  /** Peers by id, with the connection that owns each. */
  const peers = new Map<string, { peer: AnyPeer; socketId: string }>();
  const bySocket = new Map<string, AnyPeer>();

  let statsTimer: NodeJS.Timeout | undefined;
  let closing = false;
  const pixels = new FramePixels();
  const offFrames = runtime.on('frame', (frame) => pixels.see(frame));
  // --publish: the room's encode also goes to a Janus VideoRoom (loaded only then: src/media/janus/serve.ts).
  const target = options.publish;
  const publishing = target ? import('../../media/janus/serve.ts').then((m) => m.RoomPublishing.start(rooms.get(), (fn) => runtime.on('frame', fn), target, rooms.outletOptions(), log))
    .catch((err: unknown) => (log.error({ err, sfu: target.label }, 'cannot publish: the publisher did not load'), null)) : null;

  const wrtc = (): Wrtc | ErrorValue => (options.enabled ? loadWrtc() : errorValue('webrtc_unavailable', 'disabled by configuration'));

  function startStats(): void {
    if (statsTimer || peers.size === 0) return;
    statsTimer = setInterval(() => {
      if (peers.size === 0) {
        clearInterval(statsTimer);
        statsTimer = undefined;
        return;
      }
      for (const [id, { peer }] of peers) {
        void peer.readStats().then((s) => s && peers.has(id) && metrics.peerStats(id, s));
      }
    }, options.statsIntervalMs);
    statsTimer.unref();
  }

  function forget(peer: AnyPeer, socketId: string): void {
    peers.delete(peer.id);
    if (bySocket.get(socketId) === peer) bySocket.delete(socketId);
    metrics.forget(peer.id);
    metrics.peers(peers.size);
  }

  /** The book a room peer of `socket` is kept in: the same maps, metrics and notices as a MediaPeer's. */
  const roomBook = (socket: FramehostSocket, clog: Logger): PeerBook => ({
    add(peer) {
      peers.set(peer.id, { peer, socketId: socket.id });
      bySocket.set(socket.id, peer);
      metrics.peers(peers.size);
    },
    answered() {
      metrics.opened();
      startStats();
    },
    closed(peer, reason) {
      forget(peer, socket.id);
      clog.info({ peer: peer.id, reason }, 'peer closed');
      if (peer.answered && socket.connected && reason !== 'disconnected') socket.emit('webrtc:closed', { peerId: peer.id, reason });
    },
  });

  /** The book of a watcher's peer: counted like any peer; nobody to tell over Socket.IO when it closes. */
  const watcherBook = (closed: (peerId: string) => void): PeerBook => ({
    add(peer) {
      peers.set(peer.id, { peer, socketId: WATCHER });
      metrics.peers(peers.size);
    },
    answered() {
      metrics.opened();
      startStats();
    },
    closed(peer, reason) {
      forget(peer, WATCHER);
      log.info({ peer: peer.id, reason, viewer: 'whep' }, 'peer closed');
      closed(peer.id);
    },
  });

  async function openWatcher(sdp: string, closed: (peerId: string) => void): ReturnType<Media['openWatcher']> {
    // wrtc and node-datachannel were not cleared to share a process: WHEP needs the room sender.
    if (!options.enabled || options.sender !== 'room') return fail('webrtc_unavailable', 'WHEP needs the room sender (--webrtc-sender room)');
    const checked = checkOffer(sdp, options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    if (!receiveSection(checked.sections)) return fail('bad_sdp', NO_RECEIVE_SECTION);
    if (closing || peers.size >= options.maxPeers) return fail('too_many_peers', `limit ${options.maxPeers}`);
    const r = await openRoomPeer(rooms, options, watcherBook(closed), log.child({ viewer: 'whep' }), sdp);
    if (!r.ok) return r;
    const peer = peers.get(r.peerId)?.peer;
    if (!peer) return fail('unknown_peer', 'the peer closed while answering');
    return { ok: true, peerId: r.peerId, sdp: r.sdp, sink: { offer: (frame) => peer.feed(frame), close: () => peer.close('closed') } };
  }

  function config(): WebRtcConfig {
    const { minKbps, maxKbps } = pixels.bounds(options.minBitrateKbps, options.maxBitrateKbps);
    const base = { iceServers: options.iceServers, codec: options.codec, minBitrateKbps: minKbps, maxBitrateKbps: maxKbps };
    // The room sender never loads wrtc (libwebrtc and libdatachannel were not cleared to share a process).
    if (options.enabled && options.sender === 'room') return { available: true, codecs: ['VP8'], ...base, codec: 'VP8' };
    const w = wrtc();
    return isWrtc(w) ? { available: true, codecs: videoCodecs(w), ...base } : { available: false, reason: `${w.code}: ${w.message}`, codecs: [], ...base };
  }

  return {
    count: () => peers.size,
    room: () => rooms.get(),
    openWatcher,
    closeWatcher(peerId) {
      const entry = peers.get(peerId);
      if (!entry || entry.socketId !== WATCHER) return false;
      entry.peer.close('closed');
      return true;
    },

    sinkFor(socket) {
      const peer = bySocket.get(socket.id);
      if (!peer || peer.isClosed) return errorValue('unknown_peer', 'negotiate a peer (webrtc:offer) before attaching with encoding webrtc');
      let open = true;
      return {
        socket,
        peerId: peer.id,
        offer: (frame) => open && peer.feed(frame),
        close: () => (open = false),
      };
    },

    close() {
      closing = true;
      offFrames();
      clearInterval(statsTimer);
      void publishing?.then((p) => p?.stop()).finally(() => rooms.close());
      if (!publishing) rooms.close();
      for (const { peer } of [...peers.values()]) peer.close('shutdown');
    },

    attach(socket, identity) {
      const clog = log.child({ socket: socket.id, component: 'webrtc' });
      const offers = new TokenBucket(options.offersPerSecond, options.offerBurst);
      const candidates = new TokenBucket(options.candidatesPerSecond, options.candidatesPerSecond * 4);
      /** webrtc:config and webrtc:close: cheap, but not unbounded. */
      const others = new TokenBucket(OTHER_REQUESTS_PER_SECOND, OTHER_REQUESTS_PER_SECOND * 2);
      const limited = (): Result => fail('rate_limited', `more than ${OTHER_REQUESTS_PER_SECOND} webrtc:config/close requests/s`);

      function handle<E extends 'webrtc:config' | 'webrtc:offer' | 'webrtc:candidate' | 'webrtc:close'>(event: E, fn: (req: unknown) => Result | Promise<Result>): void {
        socket.on(event, ((req: unknown, ack: unknown) => {
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
            .then((result) => {
              if (!result.ok) {
                refused(result.error.code);
                clog.info({ event, code: result.error.code, message: result.error.message }, 'request refused');
              }
              try {
                (ack as (r: Result) => void)(result);
              } catch (err) {
                clog.warn({ err, event }, 'acknowledgement failed');
              }
            });
        }) as never);
      }

      const own = (peerId: unknown): AnyPeer | Result => {
        if (typeof peerId !== 'string' || peerId.length > 64) return bad('peerId must be a string');
        const entry = peers.get(peerId);
        if (!entry || entry.socketId !== socket.id) return fail('unknown_peer', `no peer ${JSON.stringify(peerId.slice(0, 40))} on this connection`);
        return entry.peer;
      };

      handle('webrtc:config', (req) => (!others.take() ? limited() : req === undefined || req === null || isPlainObject(req) ? { ok: true, ...config() } : bad('the request must be an object')));

      handle('webrtc:offer', async (req) => {
        if (!isPlainObject(req)) return bad('an offer is { sdp, peerId?, inputTrack? }');
        if (!offers.take()) return fail('rate_limited', `more than ${options.offersPerSecond} offers/s (bursts of ${options.offerBurst})`);
        const room = options.enabled && options.sender === 'room';
        const w = room ? null : wrtc();
        if (w && !isWrtc(w)) return { ok: false, error: w };
        const { sdp, peerId, inputTrack } = req;
        if (room && inputTrack !== undefined) return fail('webrtc_unavailable', 'the room sender takes no browser tracks: send camera frames with input:frame');
        if (inputTrack !== undefined && (typeof inputTrack !== 'string' || !Object.hasOwn(runtime.capabilities.inputs, inputTrack))) {
          return fail('unknown_track', typeof inputTrack === 'string' ? JSON.stringify(inputTrack.slice(0, 64)) : 'inputTrack must be a string');
        }
        if (peerId !== undefined) {
          const peer = own(peerId);
          if (!isPeer(peer)) return peer;
          if (typeof inputTrack === 'string') inputOf.set(peer, inputTrack);
          const r = await peer.answer(sdp);
          return r.ok ? { ok: true, peerId: peer.id, sdp: r.sdp } : r;
        }
        // A new peer: check what is cheap to check before creating one.
        const checked = checkOffer(sdp, options.maxSdpBytes);
        if (!checked.ok) return fail('bad_sdp', checked.problem);
        if (!receiveSection(checked.sections)) return fail('bad_sdp', NO_RECEIVE_SECTION);
        if (bySocket.has(socket.id)) return fail('too_many_peers', 'one peer per connection; renegotiate it with its peerId, or close it first');
        if (closing || peers.size >= options.maxPeers) return fail('too_many_peers', `limit ${options.maxPeers}`);
        if (!w) return openRoomPeer(rooms, options, roomBook(socket, clog), clog, sdp);
        let lastNotice = 0;
        let answered = false;
        const peer: MediaPeer = new MediaPeer(
          w,
          options,
          {
            candidate: (candidate) => socket.emit('webrtc:candidate', { peerId: peer.id, candidate }),
            closed: (reason) => {
              forget(peer, socket.id);
              clog.info({ peer: peer.id, reason }, 'peer closed');
              if (answered && socket.connected && reason !== 'disconnected') socket.emit('webrtc:closed', { peerId: peer.id, reason });
            },
            input: (frame) => {
              const track = inputOf.get(peer);
              if (!track) return;
              const spec = runtime.capabilities.inputs[track]!;
              let data = frame.data;
              if (spec.format === 'rgb') {
                data = new Uint8Array(frame.width * frame.height * 3);
                for (let p = 0; p < frame.width * frame.height; p++) data.set(frame.data.subarray(p * 4, p * 4 + 3), p * 3);
              }
              const r = runtime.publish(track, { data, width: frame.width, height: frame.height, format: spec.format }, { owner: identity() });
              if (!r.ok && Date.now() - lastNotice > 1000) {
                lastNotice = Date.now();
                refused(r.error.code);
                clog.info({ code: r.error.code }, 'webrtc input frame refused');
                socket.emit('input:rejected', { track, error: r.error });
              }
            },
          },
          clog,
          pixels,
        );
        if (typeof inputTrack === 'string') inputOf.set(peer, inputTrack);
        peers.set(peer.id, { peer, socketId: socket.id });
        bySocket.set(socket.id, peer);
        metrics.peers(peers.size);
        const r = await peer.answer(sdp);
        if (!r.ok) {
          peer.close('closed'); // a peer that never answered: as if the offer had not come
          return r;
        }
        // Counted once answered: an offer libwebrtc refuses leaves peers_opened_total as it was.
        metrics.opened();
        answered = true;
        clog.info({ peer: peer.id, codec: peer.codec }, 'peer answered');
        startStats();
        return { ok: true, peerId: peer.id, sdp: r.sdp };
      });

      handle('webrtc:candidate', async (req) => {
        if (!isPlainObject(req)) return bad('a candidate is { peerId, candidate }');
        if (!candidates.take()) return fail('rate_limited', `more than ${options.candidatesPerSecond} candidates/s`);
        const peer = own(req.peerId);
        if (!isPeer(peer)) return peer;
        const c = checkCandidate(req.candidate);
        if (typeof c === 'string') return bad(c);
        return peer.addCandidate(c);
      });

      handle('webrtc:close', (req) => {
        if (!others.take()) return limited();
        if (!isPlainObject(req)) return bad('close is { peerId }');
        const peer = own(req.peerId);
        if (!isPeer(peer)) return peer;
        peer.close('closed');
        return { ok: true };
      });

      socket.on('disconnect', () => bySocket.get(socket.id)?.close('disconnected'));
    },
  };
}

/** The input track each peer's browser track feeds (set by its offer). */
const inputOf = new WeakMap<AnyPeer, string>();
