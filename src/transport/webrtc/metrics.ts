/**
 * WebRTC figures in /metrics: the number of peers, and per peer (label `peer`, its id) the
 * sender's round trip, bitrate, fps, loss and dropped frames (on the room sender also the last
 * receiver report's fraction lost and jitter, and the rendition the peer gets); the room's encodes
 * per rendition. A closed peer's series are removed,
 * so the exposition does not grow with joins and leaves.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PeerStats } from './peer.ts';

export interface WebRtcMetrics {
  peers(n: number): void;
  opened(): void;
  peerStats(peerId: string, stats: PeerStats): void;
  forget(peerId: string): void;
}

/** One rendition's figures: frames and keyframes encoded, ms spent, viewers on it now. */
export interface RenditionFigures {
  readonly frames: number;
  readonly keyframes: number;
  readonly encodeMs: number;
  readonly viewers: number;
}

/** The room sender's figures, read at each scrape (null: no room yet). */
export type RoomCounts = () => { readonly frames: number; readonly keyframes: number; readonly renditions?: Readonly<Record<string, RenditionFigures>> } | null;

/** The room's per-rendition gauges, read at each scrape. */
function renditionGauges(registers: Registry[], roomCounts: RoomCounts): void {
  const labelNames = ['rendition'] as const;
  const each = (name: string, help: string, pick: (f: RenditionFigures) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        for (const [rendition, f] of Object.entries(roomCounts()?.renditions ?? {})) this.set({ rendition }, pick(f));
      },
    });
  each('framehost_webrtc_room_rendition_frames_encoded', 'Frames the room sender encoded in each rendition (low: only while a viewer is on it)', (f) => f.frames);
  each('framehost_webrtc_room_rendition_encode_seconds', 'Time spent encoding (convert + VP8) in each rendition', (f) => f.encodeMs / 1000);
  each('framehost_webrtc_room_rendition_viewers', 'Viewers that get each rendition now', (f) => f.viewers);
}

export function createWebRtcMetrics(registry: Registry, roomCounts: RoomCounts = () => null): WebRtcMetrics {
  const registers = [registry];
  const peers = new Gauge({ name: 'framehost_webrtc_peers', help: 'Open WebRTC peer connections', registers });
  const opened = new Counter({ name: 'framehost_webrtc_peers_opened_total', help: 'WebRTC peer connections opened (offers answered)', registers });
  const labelNames = ['peer'] as const;
  const rtt = new Gauge({ name: 'framehost_webrtc_rtt_seconds', help: 'Round trip to the viewer (RTCP), per peer', labelNames, registers });
  const bitrate = new Gauge({ name: 'framehost_webrtc_bitrate_bps', help: 'Video bitrate sent, per peer', labelNames, registers });
  const fps = new Gauge({ name: 'framehost_webrtc_fps', help: 'Video frames encoded per second, per peer', labelNames, registers });
  const lost = new Gauge({ name: 'framehost_webrtc_packets_lost', help: 'Packets the viewer reported lost, per peer', labelNames, registers });
  const dropped = new Gauge({ name: 'framehost_webrtc_frames_dropped', help: 'Frames given to the track but not encoded (newest wins), per peer', labelNames, registers });
  const fraction = new Gauge({ name: 'framehost_webrtc_fraction_lost', help: "Share of packets lost in the viewer's last receiver report (room sender), per peer", labelNames, registers });
  const jitter = new Gauge({ name: 'framehost_webrtc_jitter_seconds', help: "Interarrival jitter in the viewer's last receiver report (room sender), per peer", labelNames, registers });
  const rendition = new Gauge({ name: 'framehost_webrtc_peer_rendition', help: 'The room rendition a peer gets (1 on its current one)', labelNames: ['peer', 'rendition'] as const, registers });
  const all = [rtt, bitrate, fps, lost, dropped, fraction, jitter];
  const renditionOf = new Map<string, string>();
  renditionGauges(registers, roomCounts);
  // Read at scrape time from the room: one encode per frame shows as frames encoded = frames made.
  new Gauge({ name: 'framehost_webrtc_room_frames_encoded', help: 'Frames the room sender encoded (once for all its viewers)', registers, collect() { this.set(roomCounts()?.frames ?? 0); } });
  new Gauge({ name: 'framehost_webrtc_room_keyframes', help: 'Keyframes the room sender encoded (joins, PLI/FIR, every 600 frames)', registers, collect() { this.set(roomCounts()?.keyframes ?? 0); } });
  return {
    peers: (n) => peers.set(n),
    opened: () => opened.inc(),
    peerStats(peer, s) {
      if (s.rttMs !== null) rtt.set({ peer }, s.rttMs / 1000);
      bitrate.set({ peer }, s.bitrateKbps * 1000);
      fps.set({ peer }, s.fps);
      lost.set({ peer }, s.packetsLost);
      dropped.set({ peer }, s.framesDropped);
      if (s.fractionLost !== undefined) fraction.set({ peer }, s.fractionLost);
      if (s.jitterMs !== undefined && s.jitterMs !== null) jitter.set({ peer }, s.jitterMs / 1000);
      if (s.rendition !== undefined) {
        const was = renditionOf.get(peer);
        if (was !== undefined && was !== s.rendition) rendition.remove({ peer, rendition: was });
        renditionOf.set(peer, s.rendition);
        rendition.set({ peer, rendition: s.rendition }, 1);
      }
    },
    forget(peer) {
      for (const g of all) g.remove({ peer });
      const was = renditionOf.get(peer);
      if (was !== undefined) rendition.remove({ peer, rendition: was });
      renditionOf.delete(peer);
    },

  };
}

/** What the publisher's figures are read from at each scrape (null: not started, or the room did not load). */
export interface PublisherReading {
  readonly state: string;
  readonly reconnects: number;
}

/**
 * `--publish`'s figures, read at scrape time: `framehost_publisher_state{state}` (1 for the
 * chart's current state, every state listed so a dashboard can alert on `retrying`), and the
 * reconnects (entries to `retrying`: Janus went away, refused, or our media to it failed).
 */
export function createPublisherMetrics(registry: Registry, states: readonly string[], publisher: () => PublisherReading | null): void {
  const registers = [registry];
  new Gauge({
    name: 'framehost_publisher_state',
    help: 'The SFU publisher\'s state (1 for the current one; all 0 until it starts, or when the media room did not load)',
    labelNames: ['state'],
    registers,
    collect() {
      const current = publisher()?.state;
      for (const state of states) this.set({ state }, state === current ? 1 : 0);
    },
  });
  new Counter({
    name: 'framehost_publisher_reconnects_total',
    help: 'Times the SFU publication was lost or refused and the publisher connected again',
    registers,
    collect() {
      this.reset();
      this.inc(publisher()?.reconnects ?? 0);
    },
  });
}
