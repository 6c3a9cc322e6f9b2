/**
 * The figures under the buttons, all from the stream in use and all cleared when it ends:
 * - fps: frames this page presented in the last second (Socket.IO: frames drawn on the canvas;
 *   WebRTC: frames the video presented, counted by requestVideoFrameCallback), nothing else;
 * - frame: Socket.IO: the session's frame number; WebRTC: frames shown from this stream (the
 *   video carries no frame number);
 * - dropped: Socket.IO: frames the server dropped for this page; WebRTC: frames the decoder dropped;
 * - the #media line: the stream's transport, codec, bitrate and round trip.
 */
import type { ReceiverStats } from './webrtc.ts';
import { $ } from './dom.ts';

export type Transport = 'socket.io' | 'webrtc';

export class Figures {
  /** Frames presented in this stream. */
  frames = 0;
  /** The last whole second's presented frames (null: no stream). */
  fps: number | null = null;
  seq: number | null = null;
  dropped: number | null = null;
  /** Bytes of Socket.IO frames received in the current second, for the bitrate. */
  private bytes = 0;
  private windowStart = performance.now();
  private windowFrames = 0;
  streaming = false;
  transport: Transport = 'socket.io';
  webrtc: ReceiverStats | null = null;
  /** Why the stream travels as it does (WebRTC unavailable, lost…), kept beside the Socket.IO figures. */
  private note = '';

  /** A stream begins (Start, Watch, resume): every figure from zero. */
  begin(transport: Transport): void {
    Object.assign(this, { frames: 0, fps: null, seq: null, dropped: null, bytes: 0, windowFrames: 0, streaming: true, transport, webrtc: null });
    this.windowStart = performance.now();
    this.render();
  }

  /** The stream ended (Stop, the session's end, superseded): nothing stale stays on screen. */
  end(): void {
    Object.assign(this, { fps: null, seq: null, dropped: null, streaming: false, webrtc: null, note: '' });
    $('media').textContent = '';
    this.render();
  }

  /** Say at once why the stream travels as it does; it stays beside the Socket.IO figures. */
  say(text: string): void {
    this.note = text;
    $('media').textContent = text;
  }

  /** A frame was presented: `seq` and `dropped` from a Socket.IO frame's metadata. */
  presented(seq: number | null, dropped: number | null, bytes = 0): void {
    if (!this.streaming) return;
    this.frames++;
    this.windowFrames++;
    this.bytes += bytes;
    this.seq = seq ?? this.frames;
    if (dropped !== null) this.dropped = dropped;
  }

  /** Once a second: close the window, and read the WebRTC receiver's figures when it is the stream. */
  tick(stats: ReceiverStats | null): void {
    if (!this.streaming) return;
    const now = performance.now();
    const seconds = (now - this.windowStart) / 1000;
    this.fps = seconds > 0 ? Math.round(this.windowFrames / seconds) : 0;
    const mbits = seconds > 0 ? (this.bytes * 8) / seconds / 1e6 : 0;
    this.windowStart = now;
    this.windowFrames = 0;
    this.bytes = 0;
    this.webrtc = stats;
    if (stats) {
      this.dropped = stats.framesDropped;
      $('media').textContent = `WebRTC ${stats.codec ?? '…'} · ${(stats.bitrateKbps / 1000).toFixed(2)} Mbit/s · rtt ${stats.rttMs === null ? '-' : `${stats.rttMs.toFixed(1)} ms`} · lost ${stats.packetsLost}`;
    } else if (this.transport === 'socket.io') {
      $('media').textContent = `Socket.IO frames · ${mbits.toFixed(1)} Mbit/s${this.note ? ` · ${this.note}` : ''}`;
    }
    this.render();
  }

  render(): void {
    const shown = (v: number | null): string => (v === null ? '-' : String(v));
    $('fps').textContent = shown(this.fps);
    $('seq').textContent = shown(this.seq);
    $('dropped').textContent = shown(this.dropped);
  }
}
