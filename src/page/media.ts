/**
 * Which way the page's stream travels. WebRTC by default: the page negotiates a peer once (on
 * the first Start or Watch) and keeps it; when it cannot connect, or the peer fails later, the
 * page falls back to Socket.IO frames and says so in #media. The canvas stays the one display:
 * WebRTC frames are drawn on it as they are presented, as Socket.IO frames are.
 */
import type { FramehostClient } from '../client/client.ts';
import type { Encoding } from '../transport/socket/events.ts';
import type { WebRtcConfig } from '../transport/webrtc/wire.ts';
import { openView, type ReceiverStats, type WebRtcView } from './webrtc.ts';

export interface MediaHooks {
  draw(video: HTMLVideoElement, meta: VideoFrameCallbackMetadata): void;
  /** Say what the stream uses, and why (shown in #media). */
  say(text: string): void;
  /** The peer failed while it was the stream: re-attach with this encoding. */
  fallBack(encoding: Encoding): void;
}

/** Where the page goes when WebRTC is not to be had. */
const FALLBACK: Encoding = 'raw';

/** The page's stream: the WebRTC peer (negotiated once, kept), and the encoding in use. */
export class PageMedia {
  private config: Promise<WebRtcConfig | null> | null = null;
  private current: WebRtcView | null = null;
  private opening: Promise<WebRtcView | null> | null = null;
  private using: Encoding | null = null;

  constructor(
    private readonly client: FramehostClient,
    private readonly hooks: MediaHooks,
  ) {
    // A reconnected socket is a new connection: the server closed the old one's peer. Negotiate
    // again and take the stream back (the client's own re-attach may fail with unknown_peer first).
    client.socket.io.on('reconnect', () => this.reconnected());
  }

  /** The encoding to ask the server for, given the user's choice (negotiates when needed). */
  async encodingFor(choice: Encoding): Promise<Encoding> {
    if (choice !== 'webrtc') return (this.using = choice);
    return (this.using = (await this.peer()) ? 'webrtc' : FALLBACK);
  }

  /** The peer, once negotiated (the camera sends on it). */
  view(): WebRtcView | null {
    return this.current;
  }

  /** The peer, negotiated now if need be; null when WebRTC cannot connect (then said why). */
  async peer(): Promise<WebRtcView | null> {
    this.opening ??= this.open();
    this.current = await this.opening;
    if (!this.current) this.opening = null; // try again next time
    return this.current;
  }

  stats(): Promise<ReceiverStats | null> {
    return this.current && this.using === 'webrtc' ? this.current.stats() : Promise.resolve(null);
  }

  /** Close the peer: a Start the server refused leaves no peer behind (nothing else uses it then). */
  release(): void {
    this.forget();
    this.using = null;
  }

  private forget(): void {
    this.current?.close();
    this.current = null;
    this.opening = null;
  }

  private reconnected(): void {
    const wasWebRtc = this.using === 'webrtc';
    this.forget();
    if (!wasWebRtc) return;
    void this.peer().then((v) => {
      this.using = v ? 'webrtc' : FALLBACK;
      if (!v) this.hooks.fallBack(FALLBACK);
      else void this.client.attach({ encoding: 'webrtc' }).catch(() => this.hooks.fallBack(FALLBACK));
    });
  }

  private getConfig(): Promise<WebRtcConfig | null> {
    return (this.config ??= this.client.request('webrtc:config', {}).then((r) => (r.ok ? (r as unknown as WebRtcConfig) : null)));
  }

  private async open(): Promise<WebRtcView | null> {
    const cfg = await this.getConfig();
    if (!cfg) {
      this.hooks.say('WebRTC: the server did not answer webrtc:config; using Socket.IO frames');
      return null;
    }
    try {
      const v = await openView(this.client, cfg, { onFrame: this.hooks.draw, connectTimeoutMs: 8000, onClosed: (why) => this.lost(why) });
      this.hooks.say(`WebRTC connected (${cfg.codec} preferred)`);
      return v;
    } catch (err) {
      this.hooks.say(`WebRTC unavailable (${err instanceof Error ? err.message : String(err)}); using Socket.IO frames`);
      return null;
    }
  }

  private lost(why: string): void {
    this.current = null;
    this.opening = null;
    this.hooks.say(`WebRTC lost (${why}); using Socket.IO frames`);
    if (this.using === 'webrtc') {
      this.using = FALLBACK;
      this.hooks.fallBack(FALLBACK);
    }
  }
}
