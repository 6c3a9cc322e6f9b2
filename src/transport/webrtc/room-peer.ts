/**
 * A viewer's peer on the encode-once sender (the default; not `--webrtc-sender wrtc`): the same lifecycle and
 * signalling as MediaPeer (src/transport/webrtc/peer.ts, the peer chart), but the answer comes
 * from an outlet of the server's media room (src/media/), which sends the frames encoded once for
 * every viewer. The answer carries the server's candidates (libdatachannel gathers before it
 * answers); the viewer's trickled candidates are added as they come. The viewer's camera (a
 * section its offer sends on, with `inputTrack`) comes in on the same peer: decoded by an inlet
 * (src/media/inlet.ts) into RGBA at the input track's size and handed to `events.input`, as
 * MediaPeer's browser track is. A new offer for the peer (a renegotiation: the page adds its
 * camera) is applied in place by libdatachannel, on the same transport.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { peerMachine } from '../../machines/peer.machine.ts';
import { errorValue, fail, type ErrorValue, type Result } from '../../errors.ts';
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import type { MediaRoom } from '../../media/room.ts';
import type { Outlet, OutletOptions } from '../../media/outlet.ts';
import type { Inlet } from '../../media/inlet.ts';
import { VIDEO_CLOCK_HZ } from '../../media/vp8-rtp.ts';
import type { WebRtcOptions } from './options.ts';
import { checkOffer } from './sdp.ts';
import { OncePer } from '../../util/once-per.ts';
import type { IceCandidateInit } from './wrtc.ts';
import type { PeerCloseReason, WebRtcPeerStats as PeerStats } from './wire.ts';

export interface RoomPeerEvents {
  closed(reason: PeerCloseReason): void;
  /** A decoded frame of the viewer's camera, RGBA at the input track's size (as MediaPeer's `input`). */
  input?(frame: { data: Uint8Array; width: number; height: number }): void;
  /** The size of the input track the camera feeds (set by the offer's `inputTrack`); null: none, its packets are dropped. */
  inputSize?(): { width: number; height: number } | null;
}

export class RoomPeer {
  readonly id = randomUUID();
  private readonly actor: Actor<typeof peerMachine>;
  private outlet: Outlet | null = null;
  /** The viewer's camera, decoded (one per peer), while its offer has a camera section and an input track. */
  private inlet: Inlet | null = null;
  /** A camera that sends undecodable frames logs one line a second, not one a frame. */
  private readonly decodeWarning = new OncePer(1000);
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

  /** An offer, the first (an outlet of the room answers it) or a renegotiation (the outlet applies it in place). */
  async answer(sdp: unknown): Promise<Result<{ sdp: string }>> {
    if (this.isClosed) return fail('unknown_peer', 'the peer is closed');
    if (!this.actor.getSnapshot().can({ type: 'peer.offer' })) return fail('rate_limited', 'an offer for this peer is still being answered');
    const checked = checkOffer(sdp, this.options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    this.send({ type: 'peer.offer' });
    if (this.outlet) return this.renegotiate(this.outlet, sdp as string);
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
    await this.receive();
    this.send({ type: 'peer.answered' });
    return { ok: true, sdp: joined.sdp };
  }

  private async renegotiate(outlet: Outlet, sdp: string): Promise<Result<{ sdp: string }>> {
    const r = await outlet.renegotiate(sdp);
    if (typeof r === 'string') {
      this.send({ type: 'peer.answer_failed' });
      return fail('bad_sdp', r);
    }
    if (this.isClosed) return fail('unknown_peer', 'the peer closed while answering');
    await this.receive();
    this.send({ type: 'peer.answered' });
    return { ok: true, sdp: r.sdp };
  }

  /**
   * The inlet for the viewer's camera, once the outlet receives one and an input track is named
   * (made again when the track's size changes). node-av is loaded already: the room encodes with it.
   */
  private async receive(): Promise<void> {
    const outlet = this.outlet;
    const size = this.events.inputSize?.() ?? null;
    const payloadType = outlet?.incomingPayloadType ?? null;
    if (!outlet || !size || payloadType === null) return;
    const current = this.inlet?.options;
    if (current && current.width === size.width && current.height === size.height) return;
    const { Inlet, INLET_KEYFRAME_INTERVAL_MS } = await import('../../media/inlet.ts');
    if (this.isClosed) return;
    this.inlet?.close();
    const inlet = new Inlet(
      { ...size, payloadType, keyframeIntervalMs: INLET_KEYFRAME_INTERVAL_MS },
      {
        frame: (f) => !this.isClosed && this.events.input?.(f),
        requestKeyframe: () => outlet.requestIncomingKeyframe(),
        problem: (err) => this.decodeWarning.due() && this.log.warn({ err, peer: this.id }, 'camera frame did not decode'),
      },
    );
    this.inlet = inlet;
    outlet.onIncoming = (packet) => inlet.packet(packet);
    outlet.requestIncomingKeyframe(); // a decoder that starts now needs one (asked again on the first delta frame)
  }

  /** The camera's decode figures (frames, errors, PLIs, ms decoding), while it comes in. */
  inletCounts(): (Inlet['counts'] & { packets: Inlet['packets'] }) | null {
    return this.inlet ? { ...this.inlet.counts, packets: { ...this.inlet.packets } } : null;
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

  /** Bitrate and fps since the last read; loss, jitter and round trip from the viewer's last receiver report. */
  async readStats(): Promise<PeerStats | null> {
    if (this.isClosed || !this.outlet) return this.stats;
    const { bytesSent, rttMs } = this.outlet.figures();
    const now = performance.now();
    const last = this.lastRead;
    this.lastRead = { t: now, bytes: bytesSent, frames: this.outlet.frames };
    const dt = last ? (now - last.t) / 1000 : 0;
    const report = this.outlet.lastReport;
    this.stats = {
      rttMs,
      bitrateKbps: last && dt > 0 ? ((bytesSent - last.bytes) * 8) / 1000 / dt : 0,
      fps: last && dt > 0 ? (this.outlet.frames - last.frames) / dt : 0,
      packetsLost: Math.max(0, report?.cumulativeLost ?? 0),
      framesDropped: 0, // one encode for all: a viewer's frame is sent or its track is not open
      framesSent: this.outlet.frames,
      codec: this.codec,
      fractionLost: report?.fractionLost ?? 0,
      jitterMs: report ? (report.jitter * 1000) / VIDEO_CLOCK_HZ : null,
      rendition: this.room.renditionOf(this.outlet),
    };
    return this.stats;
  }

  close(reason: PeerCloseReason): void {
    this.send({ type: 'peer.close', reason });
  }

  private teardown(reason: PeerCloseReason): void {
    const camera = this.inletCounts();
    if (camera) {
      const { decoded, decodeErrors, keyframeRequests, decodeMs, packets } = camera;
      this.log.info({ peer: this.id, decoded, decodeErrors, keyframeRequests, decodeMsPerFrame: decoded > 0 ? +(decodeMs / decoded).toFixed(3) : null, packets }, 'camera closed');
    }
    this.inlet?.close();
    this.inlet = null;
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

  /** The room's encode counts (all renditions, and per rendition), once it exists. */
  counts(): (MediaRoom['counts'] & { renditions: ReturnType<MediaRoom['renditionCounts']> }) | null {
    return this.loaded ? { ...this.loaded.counts, renditions: this.loaded.renditionCounts() } : null;
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
  /** A frame of its camera, for the input track its offer named (a WHEP viewer has none). */
  input?(peer: RoomPeer, frame: { data: Uint8Array; width: number; height: number }): void;
  /** The size of that input track, or null when none was named. */
  inputSize?(peer: RoomPeer): { width: number; height: number } | null;
}

/** A new viewer's offer on the room sender: a RoomPeer, answered by a room outlet, in the book. */
export async function openRoomPeer(rooms: RoomLoader, options: WebRtcOptions, book: PeerBook, log: Logger, sdp: unknown): Promise<Result<{ peerId: string; sdp: string }>> {
  const room = await rooms.get();
  if (!('push' in room)) return { ok: false, error: room };
  const events: RoomPeerEvents = {
    closed: (reason) => book.closed(peer, reason),
    ...(book.input ? { input: (frame) => book.input!(peer, frame) } : {}),
    ...(book.inputSize ? { inputSize: () => book.inputSize!(peer) } : {}),
  };
  const peer: RoomPeer = new RoomPeer(room, options, events, log);
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
