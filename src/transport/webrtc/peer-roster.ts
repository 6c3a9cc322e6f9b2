/**
 * The server's open peers: who owns each (a connection, or WHEP), the one-peer-per-connection
 * and `maxPeers` rules' counts, the peer gauge, and the stats poll that runs while any peer is open.
 */
import type { Result } from '../../errors.ts';
import type { WebRtcMetrics } from './metrics.ts';
import type { WebRtcOptions } from './options.ts';
import { MediaPeer } from './peer.ts';
import { RoomPeer } from './room-peer.ts';

/** A viewer's peer: libwebrtc's own encoder (MediaPeer) or an outlet of the media room (RoomPeer). */
export type AnyPeer = MediaPeer | RoomPeer;
export const isPeer = (x: AnyPeer | Result): x is AnyPeer => x instanceof MediaPeer || x instanceof RoomPeer;

/** The owner recorded for a watcher's peer: no Socket.IO id is this short. */
export const WATCHER = 'whep';

/** Open peers by id and by owning connection, counted in the metrics. */
export class PeerRoster {
  readonly #peers = new Map<string, { peer: AnyPeer; owner: string }>();
  readonly #byOwner = new Map<string, AnyPeer>();
  #statsTimer: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(
    private readonly options: WebRtcOptions,
    private readonly metrics: WebRtcMetrics,
  ) {}

  get size(): number {
    return this.#peers.size;
  }

  /** Whether a new peer must be refused: the server is closing or at `maxPeers`. */
  get full(): boolean {
    return this.#closing || this.#peers.size >= this.options.maxPeers;
  }

  /** Registered before answering, so that the limits count a peer still being answered. */
  add(peer: AnyPeer, owner: string): void {
    this.#peers.set(peer.id, { peer, owner });
    // A watcher has no connection to look its peer up by.
    if (owner !== WATCHER) this.#byOwner.set(owner, peer);
    this.metrics.peers(this.#peers.size);
  }

  /** Its offer was answered: counted as opened, and its stats read from now on. */
  answered(): void {
    this.metrics.opened();
    this.startStats();
  }

  forget(peer: AnyPeer, owner: string): void {
    this.#peers.delete(peer.id);
    if (this.#byOwner.get(owner) === peer) this.#byOwner.delete(owner);
    this.metrics.forget(peer.id);
    this.metrics.peers(this.#peers.size);
  }

  /** The peer `peerId` if `owner` owns it. */
  ownedBy(peerId: string, owner: string): AnyPeer | undefined {
    const entry = this.#peers.get(peerId);
    return entry && entry.owner === owner ? entry.peer : undefined;
  }

  get(peerId: string): AnyPeer | undefined {
    return this.#peers.get(peerId)?.peer;
  }

  /** The peer of a connection (at most one). */
  of(owner: string): AnyPeer | undefined {
    return this.#byOwner.get(owner);
  }

  /** Refuse new peers, stop polling stats and close every peer. */
  close(): void {
    this.#closing = true;
    clearInterval(this.#statsTimer);
    for (const { peer } of [...this.#peers.values()]) peer.close('shutdown');
  }

  private startStats(): void {
    if (this.#statsTimer || this.#peers.size === 0) return;
    this.#statsTimer = setInterval(() => this.pollStats(), this.options.statsIntervalMs);
    this.#statsTimer.unref();
  }

  private pollStats(): void {
    if (this.#peers.size === 0) {
      clearInterval(this.#statsTimer);
      this.#statsTimer = undefined;
      return;
    }
    for (const [id, { peer }] of this.#peers) {
      void peer.readStats().then((s) => s && this.#peers.has(id) && this.metrics.peerStats(id, s));
    }
  }
}
