/**
 * WebRTC signalling over the connection's Socket.IO socket, and the server's peers.
 *
 * The page asks `webrtc:config` (ICE servers, codecs), offers with `webrtc:offer` and gets the
 * answer in the ack; candidates trickle both ways as `webrtc:candidate`. A connection holds at
 * most one peer; the server at most `maxPeers`. Every refusal is a coded error to the sender,
 * logged, and leaves every peer as it was: a bad offer for a new peer creates none, a bad
 * renegotiation keeps the peer's current session. A connection that goes away closes its peer.
 *
 * createMedia only wires the parts: the roster of peers (peer-roster.ts), each connection's
 * handlers (connection-signalling.ts), WHEP's viewers (watchers.ts) and the room (room-peer.ts).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorValue, type ErrorCode, type ErrorValue } from '../../errors.ts';
import type { Runtime, RuntimeFrame } from '../../runtime/runtime.ts';
import type { MediaRoom } from '../../media/room.ts';
import { FramePixels } from '../../media/bitrate.ts';
import { ConnectionSignalling, type FramehostSocket, type SignallingDeps } from './connection-signalling.ts';
import { createPublisherMetrics, createWebRtcMetrics } from './metrics.ts';
import type { LiveChart } from '../../machines/chart-graph.ts';
import { publisherMachine } from '../../machines/publisher.machine.ts';
import type { RoomPublishing } from '../../media/publishing.ts';
import type { SfuLink, SfuPublisher } from '../../media/sfu-publisher.ts';
import type { WebRtcOptions } from './options.ts';
import { PeerRoster, type AnyPeer } from './peer-roster.ts';
import { RoomLoader } from './room-peer.ts';
import { WhepWatchers, type WatcherOpened } from './watchers.ts';
import type { WebRtcConfig } from './wire.ts';
import { isWrtc, loadWrtc, videoCodecs, type Wrtc } from './wrtc.ts';

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
  openWatcher(sdp: string, closed: (peerId: string) => void): Promise<WatcherOpened>;
  /** End a watcher's peer (WHEP's DELETE); false when there is no such watcher. */
  closeWatcher(peerId: string): boolean;
  /** The server's media room (loaded on first use), for recordings; or why it cannot load. */
  room(): Promise<MediaRoom | ErrorValue>;
  /** Open peers (for tests and the soak). */
  count(): number;
  /** The SFU publisher's chart once it has started (`--publish`), for /chart; null without one. */
  publisherChart(): Promise<LiveChart | null>;
  /**
   * Close every peer at once; resolves once a Janus publication has left its room (bounded by
   * the publisher's stop deadline) and the room is closed, so a shutdown does not exit first.
   */
  close(): Promise<void>;
}

/** A sink on a connection's peer: it feeds the peer until closed. */
class PeerSink implements MediaSink {
  readonly peerId: string;
  #open = true;

  constructor(
    readonly socket: FramehostSocket,
    private readonly peer: AnyPeer,
  ) {
    this.peerId = peer.id;
  }

  offer(frame: RuntimeFrame): void {
    if (this.#open) this.peer.feed(frame);
  }

  close(): void {
    this.#open = false;
  }
}

/** The page's `webrtc:config`: ICE servers, codecs, and the bitrate bounds for the session's frame size. */
function webRtcConfig(options: WebRtcOptions, pixels: FramePixels, wrtc: () => Wrtc | ErrorValue): WebRtcConfig {
  const { minKbps, maxKbps } = pixels.bounds(options.minBitrateKbps, options.maxBitrateKbps);
  const base = { iceServers: options.iceServers, codec: options.codec, minBitrateKbps: minKbps, maxBitrateKbps: maxKbps };
  // The room sender never loads wrtc (libwebrtc and libdatachannel were not cleared to share a process).
  if (options.enabled && options.sender === 'room') return { available: true, codecs: ['VP8'], ...base, codec: 'VP8' };
  const w = wrtc();
  return isWrtc(w) ? { available: true, codecs: videoCodecs(w), ...base } : { available: false, reason: `${w.code}: ${w.message}`, codecs: [], ...base };
}

/** --publish: the room's encode also goes to a Janus VideoRoom or a WHIP endpoint (loaded only then: src/media/publishing.ts). */
function startPublishing(deps: MediaDeps, rooms: RoomLoader): Promise<RoomPublishing | null> | null {
  const { runtime, options, log } = deps;
  const target = options.publish;
  if (!target) return null;
  const started = import('../../media/publishing.ts')
    .then((m) => m.RoomPublishing.start(rooms.get(), (fn) => runtime.on('frame', fn), target, rooms.outletOptions(), log))
    .catch((err: unknown) => (log.error({ err, sfu: target.label }, 'cannot publish: the publisher did not load'), null));
  const seen = new StartedPublisher(started);
  createPublisherMetrics(deps.registry, Object.keys(publisherMachine.config.states ?? {}), () => seen.current);
  return started;
}

/** The publisher once it has started (it starts with the media room), for /metrics to read at each scrape. */
class StartedPublisher {
  #publishing: RoomPublishing | null = null;

  constructor(started: Promise<RoomPublishing | null>) {
    void started.then((p) => (this.#publishing = p));
  }

  get current(): SfuPublisher<SfuLink> | null {
    return this.#publishing?.publisher ?? null;
  }
}

export function createMedia(deps: MediaDeps): Media {
  const { runtime, options, log } = deps;
  const rooms = new RoomLoader(options);
  const roster = new PeerRoster(options, createWebRtcMetrics(deps.registry, () => rooms.counts()));
  const pixels = new FramePixels();
  const offFrames = runtime.on('frame', (frame) => pixels.see(frame));
  const publishing = startPublishing(deps, rooms);
  const watchers = new WhepWatchers(rooms, options, roster, log);
  const wrtc = (): Wrtc | ErrorValue => (options.enabled ? loadWrtc() : errorValue('webrtc_unavailable', 'disabled by configuration'));
  const signalling: SignallingDeps = { runtime, options, roster, rooms, pixels, refused: deps.refused, wrtc, config: () => webRtcConfig(options, pixels, wrtc) };

  return {
    count: () => roster.size,
    publisherChart: () => (publishing ? publishing.then((p) => p?.publisher.chart ?? null) : Promise.resolve(null)),
    room: () => rooms.get(),
    openWatcher: (sdp, closed) => watchers.open(sdp, closed),
    closeWatcher: (peerId) => watchers.close(peerId),
    sinkFor(socket) {
      const peer = roster.of(socket.id);
      if (!peer || peer.isClosed) return errorValue('unknown_peer', 'negotiate a peer (webrtc:offer) before attaching with encoding webrtc');
      return new PeerSink(socket, peer);
    },
    close() {
      offFrames();
      roster.close();
      if (!publishing) return Promise.resolve(rooms.close());
      return publishing.then((p) => p?.stop()).finally(() => rooms.close());
    },
    attach: (socket, identity) => new ConnectionSignalling(signalling, socket, identity, log).listen(),
  };
}
