/**
 * One peer connection between the server and one viewer's page. The browser offers (it knows
 * what it wants: receive the stream, maybe send its camera); the server answers. The server's
 * video track is fed the session's frames while this peer is the stream's sink; the encoder
 * takes the newest frame (libwebrtc drops a frame that arrives while the previous one is still
 * waiting for the encoder), so a slow peer never holds up the model or the other peers.
 *
 * A browser track (its camera) becomes input frames for a model track, newest wins, as
 * `input:frame` does. Closing stops the tracks and the connection, and is final.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor } from 'xstate';
import { peerMachine } from '../../machines/peer.machine.ts';
import type { Logger } from 'pino';
import { fail, type ErrorValue, type Result } from '../../errors.ts';
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import { candidateAllowed, type WebRtcOptions } from './options.ts';
import type { FramePixels } from '../../media/bitrate.ts';
import { boundBitrate, checkOffer, NO_RECEIVE_SECTION, preferCodec, receiveSection, sendingCodec, type MediaSection } from './sdp.ts';
import { toI420, toRgba } from './i420.ts';
import type { I420Frame, IceCandidateInit, Wrtc, WrtcPeerConnection, WrtcSender, WrtcTrack, WrtcVideoSink, WrtcVideoSource } from './wrtc.ts';

import type { PeerCloseReason, WebRtcPeerStats as PeerStats } from './wire.ts';

export type { PeerCloseReason, PeerStats };

export interface PeerEvents {
  candidate(candidate: IceCandidateInit | null): void;
  closed(reason: PeerCloseReason): void;
  /** A decoded frame of the browser's track, as RGBA. */
  input(frame: { data: Uint8Array; width: number; height: number }): void;
}

const answerTimeout = (ms: number): Promise<ErrorValue> =>
  new Promise((resolve) => setTimeout(() => resolve(fail('timeout', `no answer within ${ms} ms`).error), ms).unref());

export class MediaPeer {
  readonly id = randomUUID();
  private readonly pc: WrtcPeerConnection;
  private readonly source: WrtcVideoSource;
  private readonly track: WrtcTrack;
  private sender: WrtcSender | null = null;
  private inbound: WrtcVideoSink | null = null;
  /** The lifecycle (src/machines/peer.machine.ts); its final state runs the teardown. */
  private readonly actor: Actor<typeof peerMachine>;
  /** Remote candidates accepted so far (bounded per peer). */
  candidates = 0;
  /** Frames handed to the track. */
  fed = 0;
  codec: string | null = null;
  stats: PeerStats | null = null;
  private lastBytes: { t: number; bytes: number; frames: number } | null = null;

  constructor(
    private readonly w: Wrtc,
    private readonly options: WebRtcOptions,
    private readonly events: PeerEvents,
    private readonly log: Logger,
    /** The session's frame size, for the default bitrate bound of each offer. */
    private readonly pixels: FramePixels,
  ) {
    this.pc = new w.RTCPeerConnection({ iceServers: options.iceServers.map((s) => ({ ...s, urls: typeof s.urls === 'string' ? s.urls : [...s.urls] })) });
    // A camera-like source: libwebrtc's default ("balanced") degradation may lower frame rate
    // and resolution under CPU load. `isScreencast: true` aborts the process in wrtc 0.10.
    this.source = new w.nonstandard.RTCVideoSource({ isScreencast: false });
    this.track = this.source.createTrack();
    this.pc.onicecandidate = ({ candidate }) => {
      if (this.isClosed) return;
      if (candidate && !candidateAllowed(candidate.candidate, options.iceHostAddresses)) return;
      this.events.candidate(candidate ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } : null);
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      if (state === 'connected') this.send({ type: 'peer.connected' });
      if (state === 'failed') this.send({ type: 'peer.failed' });
    };
    this.actor = createActor(peerMachine, { input: { connectTimeoutMs: options.connectTimeoutMs } });
    this.actor.subscribe({
      next: (snapshot) => snapshot.status === 'done' && this.teardown(snapshot.context.closeReason ?? 'closed'),
      error: (err) => this.log.error({ err }, 'peer chart failed'),
    });
    this.actor.start();
    this.pc.ontrack = ({ track }) => {
      if (this.isClosed || track.kind !== 'video' || this.inbound) return;
      this.inbound = new w.nonstandard.RTCVideoSink(track);
      this.inbound.onframe = ({ frame }) => this.takeInput(frame);
    };
  }

  private send(event: Parameters<Actor<typeof peerMachine>['send']>[0]): void {
    if (!this.isClosed) this.actor.send(event);
  }

  get isClosed(): boolean {
    return this.actor.getSnapshot().status !== 'active';
  }

  /** Apply an offer (the first or a renegotiation) and return the answer's SDP. */
  async answer(sdp: unknown): Promise<Result<{ sdp: string }>> {
    if (this.isClosed) return fail('unknown_peer', 'the peer is closed');
    if (!this.actor.getSnapshot().can({ type: 'peer.offer' })) return fail('rate_limited', 'an offer for this peer is still being answered');
    const checked = checkOffer(sdp, this.options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    this.send({ type: 'peer.offer' });
    const outcome = await Promise.race([this.negotiate(sdp as string, checked.sections), answerTimeout(this.options.answerTimeoutMs)]);
    const result: Result<{ sdp: string }> = 'code' in outcome ? { ok: false, error: outcome } : outcome;
    // A first offer that fails closes the peer (as if it had not come); a renegotiation that
    // fails leaves it as it was (the chart decides).
    this.send(result.ok ? { type: 'peer.answered' } : { type: 'peer.answer_failed' });
    return result;
  }

  private async negotiate(sdp: string, sections: readonly MediaSection[]): Promise<Result<{ sdp: string }>> {
    try {
      const { minKbps, maxKbps } = this.pixels.bounds(this.options.minBitrateKbps, this.options.maxBitrateKbps);
      await this.pc.setRemoteDescription({ type: 'offer', sdp: boundBitrate(sdp, minKbps, maxKbps) });
    } catch (err) {
      return fail('bad_sdp', err instanceof Error ? err.message.slice(0, 200) : 'setRemoteDescription failed');
    }
    if (this.isClosed) return fail('unknown_peer', 'the peer closed while answering');
    if (!this.sender) {
      // The browser's receive section (recvonly in its offer) is where the server sends.
      const wanted = receiveSection(sections);
      const transceiver = this.pc.getTransceivers().find((t) => t.mid !== null && t.mid === wanted?.mid);
      if (!wanted || !transceiver) {
        await this.rollback();
        return fail('bad_sdp', NO_RECEIVE_SECTION);
      }
      transceiver.direction = wanted.direction === 'sendrecv' ? 'sendrecv' : 'sendonly';
      this.sender = transceiver.sender;
      await transceiver.sender.replaceTrack(this.track);
    }
    let local: string;
    try {
      const answer = await this.pc.createAnswer();
      local = preferCodec(answer.sdp, this.options.codec);
      await this.pc.setLocalDescription({ type: 'answer', sdp: local });
    } catch (err) {
      await this.rollback(); // the offer was applied: back to the stable state before it
      return fail('bad_sdp', err instanceof Error ? err.message.slice(0, 200) : 'cannot answer this offer');
    }
    // Never read pc.localDescription: wrtc serializes it on the JS thread while libwebrtc's
    // signalling thread adds gathered candidates to it (a data race; it crashed the soak test
    // after a few hundred peers). Candidates trickle separately, so the answer as set is enough.
    this.codec = sendingCodec(local);
    return { ok: true, sdp: local };
  }

  /** An offer that was applied but cannot be answered: back to the stable state. */
  private async rollback(): Promise<void> {
    try {
      await this.pc.setLocalDescription({ type: 'rollback', sdp: '' });
    } catch (err) {
      this.log.debug({ err }, 'rollback failed');
    }
  }

  async addCandidate(candidate: IceCandidateInit | null): Promise<Result> {
    if (this.isClosed) return fail('unknown_peer', 'the peer is closed');
    if (candidate === null) return { ok: true }; // end of candidates: nothing to do
    if (this.candidates >= this.options.maxCandidatesPerPeer) return fail('rate_limited', `more than ${this.options.maxCandidatesPerPeer} candidates for one peer`);
    this.candidates++;
    try {
      await this.pc.addIceCandidate(candidate);
      return { ok: true };
    } catch (err) {
      return fail('bad_request', `candidate refused: ${err instanceof Error ? err.message.slice(0, 200) : 'unknown reason'}`);
    }
  }

  /** A frame of the session, while this peer is a sink of the stream. */
  feed(frame: RuntimeFrame): void {
    if (this.isClosed) return;
    this.source.onFrame(toI420(this.w, frame));
    this.fed++;
  }

  private lastInputProblem = 0;
  private takeInput(frame: I420Frame): void {
    if (this.isClosed) return;
    try {
      this.events.input({ data: toRgba(this.w, frame), width: frame.width, height: frame.height });
    } catch (err) {
      const now = Date.now();
      if (now - this.lastInputProblem > 1000) this.log.warn({ err }, 'input frame conversion failed');
      this.lastInputProblem = now;
    }
  }

  /** Read the sender's stats: bitrate and fps since the last read, loss and rtt as reported. */
  async readStats(): Promise<PeerStats | null> {
    if (this.isClosed) return null;
    let report;
    try {
      report = await this.pc.getStats();
    } catch {
      return this.stats;
    }
    let bytes = 0;
    let framesSent = 0;
    let packetsLost = 0;
    let rttMs: number | null = null;
    for (const s of report.values()) {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        bytes += Number(s.bytesSent ?? 0);
        framesSent += Number(s.framesEncoded ?? s.framesSent ?? 0);
      } else if (s.type === 'remote-inbound-rtp' && s.kind === 'video') {
        packetsLost += Number(s.packetsLost ?? 0);
        if (typeof s.roundTripTime === 'number') rttMs = s.roundTripTime * 1000;
      } else if (s.type === 'candidate-pair' && s.nominated === true && typeof s.currentRoundTripTime === 'number' && rttMs === null) {
        rttMs = s.currentRoundTripTime * 1000;
      }
    }
    const now = performance.now();
    const last = this.lastBytes;
    this.lastBytes = { t: now, bytes, frames: framesSent };
    const dt = last ? (now - last.t) / 1000 : 0;
    this.stats = {
      rttMs,
      bitrateKbps: last && dt > 0 ? ((bytes - last.bytes) * 8) / 1000 / dt : 0,
      fps: last && dt > 0 ? (framesSent - last.frames) / dt : 0,
      packetsLost,
      framesDropped: Math.max(0, this.fed - framesSent),
      framesSent,
      codec: this.codec,
    };
    return this.stats;
  }

  close(reason: PeerCloseReason): void {
    this.send({ type: 'peer.close', reason });
  }

  /** The chart reached `closed`: stop everything, once. */
  private teardown(reason: PeerCloseReason): void {
    this.pc.onicecandidate = null;
    this.pc.onconnectionstatechange = null;
    this.pc.ontrack = null;
    if (this.inbound) {
      this.inbound.onframe = null;
      this.inbound.stop();
    }
    this.track.stop();
    this.pc.close();
    this.events.closed(reason);
  }
}
