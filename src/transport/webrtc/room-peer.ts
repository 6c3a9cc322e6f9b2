/**
 * A viewer's peer on the encode-once sender (`--webrtc-sender room`): the same lifecycle and
 * signalling as MediaPeer (src/transport/webrtc/peer.ts, the peer chart), but the answer comes
 * from an outlet of the server's media room (src/media/), which sends the frames encoded once for
 * every viewer. The answer carries the server's candidates (libdatachannel gathers before it
 * answers); the viewer's trickled candidates are added as they come. It sends only: an offer to
 * send the browser's camera is refused (`webrtc_unavailable`), and a renegotiation too.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { peerMachine } from '../../machines/peer.machine.ts';
import { errorValue, fail, type ErrorValue, type Result } from '../../errors.ts';
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import type { MediaRoom } from '../../media/room.ts';
import type { Outlet, OutletOptions } from '../../media/outlet.ts';
import type { WebRtcOptions } from './options.ts';
import { checkOffer } from './sdp.ts';
import type { IceCandidateInit } from './wrtc.ts';
import type { PeerCloseReason, WebRtcPeerStats as PeerStats } from './wire.ts';

export interface RoomPeerEvents {
  closed(reason: PeerCloseReason): void;
}

export class RoomPeer {
  readonly id = randomUUID();
  private readonly actor: Actor<typeof peerMachine>;
  private outlet: Outlet | null = null;
  candidates = 0;
  codec: string | null = null;
  stats: PeerStats | null = null;
  private lastRead: { t: number; bytes: number; frames: number } | null = null;

  constructor(
    private readonly room: MediaRoom,
    private readonly options: WebRtcOptions,
    private readonly events: RoomPeerEvents,
    private readonly log: Logger,
  ) {
    this.actor = createActor(peerMachine, { input: { connectTimeoutMs: options.connectTimeoutMs } });
    this.actor.subscribe({
      next: (snapshot) => snapshot.status === 'done' && this.teardown(snapshot.context.closeReason ?? 'closed'),
      error: (err) => this.log.error({ err }, 'peer chart failed'),
    });
    this.actor.start();
  }

  get isClosed(): boolean {
    return this.actor.getSnapshot().status !== 'active';
  }

  /** Whether its offer was answered (a peer that never was leaves no trace for the viewer). */
  get answered(): boolean {
    return this.outlet !== null;
  }

  private send(event: Parameters<Actor<typeof peerMachine>['send']>[0]): void {
    if (!this.isClosed) this.actor.send(event);
  }

  /** The first offer: an outlet of the room answers it. No renegotiation on this sender. */
  async answer(sdp: unknown): Promise<Result<{ sdp: string }>> {
    if (this.isClosed) return fail('unknown_peer', 'the peer is closed');
    if (this.outlet) return fail('bad_sdp', 'the room sender does not renegotiate; close the peer and offer again');
    if (!this.actor.getSnapshot().can({ type: 'peer.offer' })) return fail('rate_limited', 'an offer for this peer is still being answered');
    const checked = checkOffer(sdp, this.options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    this.send({ type: 'peer.offer' });
    const joined = await this.room.join(sdp as string, (state) => this.onState(state));
    if (typeof joined === 'string') {
      this.send({ type: 'peer.answer_failed' });
      return fail('bad_sdp', joined);
    }
    if (this.isClosed) {
      this.room.leave(joined.outlet);
      return fail('unknown_peer', 'the peer closed while answering');
    }
    this.outlet = joined.outlet;
    this.codec = 'VP8';
    this.send({ type: 'peer.answered' });
    return { ok: true, sdp: joined.sdp };
  }

  private onState(state: string): void {
    if (state === 'connected') this.send({ type: 'peer.connected' });
    if (state === 'failed') this.send({ type: 'peer.failed' });
  }

  async addCandidate(candidate: IceCandidateInit | null): Promise<Result> {
    if (this.isClosed) return fail('unknown_peer', 'the peer is closed');
    if (candidate === null || !this.outlet) return { ok: true }; // the end, or before the answer: the offer's own candidates serve
    if (this.candidates >= this.options.maxCandidatesPerPeer) return fail('rate_limited', `more than ${this.options.maxCandidatesPerPeer} candidates for one peer`);
    this.candidates++;
    try {
      this.outlet.addRemoteCandidate(candidate.candidate);
      return { ok: true };
    } catch (err) {
      return fail('bad_request', `candidate refused: ${err instanceof Error ? err.message.slice(0, 200) : 'unknown reason'}`);
    }
  }

  /** A frame of the session, while this peer is a sink of the stream: encoded once for all. */
  feed(frame: RuntimeFrame): void {
    if (this.isClosed || !this.outlet) return;
    this.room.deliver(frame, this.outlet);
  }

  /** Bitrate and fps since the last read, round trip from libdatachannel. */
  async readStats(): Promise<PeerStats | null> {
    if (this.isClosed || !this.outlet) return this.stats;
    const { bytesSent, rttMs } = this.outlet.figures();
    const now = performance.now();
    const last = this.lastRead;
    this.lastRead = { t: now, bytes: bytesSent, frames: this.outlet.frames };
    const dt = last ? (now - last.t) / 1000 : 0;
    this.stats = {
      rttMs,
      bitrateKbps: last && dt > 0 ? ((bytesSent - last.bytes) * 8) / 1000 / dt : 0,
      fps: last && dt > 0 ? (this.outlet.frames - last.frames) / dt : 0,
      packetsLost: 0, // receiver reports are not read on this sender yet
      framesDropped: 0, // one encode for all: a viewer's frame is sent or its track is not open
      framesSent: this.outlet.frames,
      codec: this.codec,
    };
    return this.stats;
  }

  close(reason: PeerCloseReason): void {
    this.send({ type: 'peer.close', reason });
  }

  private teardown(reason: PeerCloseReason): void {
    if (this.outlet) this.room.leave(this.outlet);
    this.events.closed(reason);
  }
}

/**
 * The server's one media room, loaded on the first room peer: node-av (an optional dependency,
 * GPLv3 FFmpeg) is imported only by servers that use this sender.
 */
export class RoomLoader {
  private room: Promise<MediaRoom | ErrorValue> | null = null;
  private loaded: MediaRoom | null = null;

  constructor(private readonly options: WebRtcOptions) {}

  /** The room's encode counts, once it exists. */
  counts(): MediaRoom['counts'] | null {
    return this.loaded?.counts ?? null;
  }

  /** Every outlet's ICE settings. libjuice binds one address: with exactly one allowed host address, media uses only it. */
  outletOptions(): Pick<OutletOptions, 'bindAddress' | 'playoutDelay'> {
    const hosts = this.options.iceHostAddresses;
    return { playoutDelay: this.options.playoutDelay, ...(hosts.length === 1 ? { bindAddress: hosts[0]! } : {}) };
  }

  get(): Promise<MediaRoom | ErrorValue> {
    this.room ??= import('../../media/room.ts').then(
      ({ MediaRoom, DEFAULT_ROOM }) => {
        this.loaded = new MediaRoom({ ...DEFAULT_ROOM, bitrateKbps: this.options.maxBitrateKbps, outlet: { ...DEFAULT_ROOM.outlet, ...this.outletOptions() } });
        return this.loaded;
      },
      (err: unknown) => errorValue('webrtc_unavailable', `the room sender did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`),
    );
    return this.room;
  }

  close(): void {
    void this.room?.then((r) => 'push' in r && r.close());
  }
}

/** Where signalling keeps its peers (the roster of peer-roster.ts): a room peer joins the same book. */
export interface PeerBook {
  /** Registered before answering: the connection's one-peer rule and the server's limit count it. */
  add(peer: RoomPeer): void;
  /** Its offer was answered: counted as opened. */
  answered(peer: RoomPeer): void;
  /** It closed: out of the book, and the viewer told unless it went away or was never answered. */
  closed(peer: RoomPeer, reason: PeerCloseReason): void;
}

/** A new viewer's offer on the room sender: a RoomPeer, answered by a room outlet, in the book. */
export async function openRoomPeer(rooms: RoomLoader, options: WebRtcOptions, book: PeerBook, log: Logger, sdp: unknown): Promise<Result<{ peerId: string; sdp: string }>> {
  const room = await rooms.get();
  if (!('push' in room)) return { ok: false, error: room };
  const peer: RoomPeer = new RoomPeer(room, options, { closed: (reason) => book.closed(peer, reason) }, log);
  book.add(peer);
  const r = await peer.answer(sdp);
  if (!r.ok) {
    peer.close('closed'); // as if the offer had not come
    return r;
  }
  book.answered(peer);
  log.info({ peer: peer.id, codec: peer.codec, sender: 'room' }, 'peer answered');
  return { ok: true, peerId: peer.id, sdp: r.sdp };
}
