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

export interface PageMedia {
  /** The encoding to ask the server for, given the user's choice (negotiates when needed). */
  encodingFor(choice: Encoding): Promise<Encoding>;
  /** The peer, once negotiated (the camera sends on it). */
  view(): WebRtcView | null;
  /** The peer, negotiated now if need be; null when WebRTC cannot connect (then said why). */
  peer(): Promise<WebRtcView | null>;
  stats(): Promise<ReceiverStats | null>;
  /** Close the peer: a Start the server refused leaves no peer behind (nothing else uses it then). */
  release(): void;
}

export interface MediaHooks {
  draw(video: HTMLVideoElement, meta: VideoFrameCallbackMetadata): void;
  /** Say what the stream uses, and why (shown in #media). */
  say(text: string): void;
  /** The peer failed while it was the stream: re-attach with this encoding. */
  fallBack(encoding: Encoding): void;
}

/** Where the page goes when WebRTC is not to be had. */
const FALLBACK: Encoding = 'raw';

export function createPageMedia(client: FramehostClient, hooks: MediaHooks): PageMedia {
  let config: Promise<WebRtcConfig | null> | null = null;
  let view: WebRtcView | null = null;
  let opening: Promise<WebRtcView | null> | null = null;
  let using: Encoding | null = null;

  const getConfig = (): Promise<WebRtcConfig | null> =>
    (config ??= client.request('webrtc:config', {}).then((r) => (r.ok ? (r as unknown as WebRtcConfig) : null)));

  async function open(): Promise<WebRtcView | null> {
    const cfg = await getConfig();
    if (!cfg) {
      hooks.say('WebRTC: the server did not answer webrtc:config; using Socket.IO frames');
      return null;
    }
    try {
      const v = await openView(client, cfg, {
        onFrame: hooks.draw,
        connectTimeoutMs: 8000,
        onClosed: (why) => {
          view = null;
          opening = null;
          hooks.say(`WebRTC lost (${why}); using Socket.IO frames`);
          if (using === 'webrtc') {
            using = FALLBACK;
            hooks.fallBack(FALLBACK);
          }
        },
      });
      hooks.say(`WebRTC connected (${cfg.codec} preferred)`);
      return v;
    } catch (err) {
      hooks.say(`WebRTC unavailable (${err instanceof Error ? err.message : String(err)}); using Socket.IO frames`);
      return null;
    }
  }

  // A reconnected socket is a new connection: the server closed the old one's peer. Negotiate
  // again and take the stream back (the client's own re-attach may fail with unknown_peer first).
  client.socket.io.on('reconnect', () => {
    const wasWebRtc = using === 'webrtc';
    view?.close();
    view = null;
    opening = null;
    if (wasWebRtc) {
      void peer().then((v) => {
        using = v ? 'webrtc' : FALLBACK;
        if (!v) hooks.fallBack(FALLBACK);
        else void client.attach({ encoding: 'webrtc' }).catch(() => hooks.fallBack(FALLBACK));
      });
    }
  });

  async function peer(): Promise<WebRtcView | null> {
    opening ??= open();
    view = await opening;
    if (!view) opening = null; // try again next time
    return view;
  }

  return {
    async encodingFor(choice) {
      if (choice !== 'webrtc') return (using = choice);
      return (using = (await peer()) ? 'webrtc' : FALLBACK);
    },
    view: () => view,
    peer,
    stats: () => (view && using === 'webrtc' ? view.stats() : Promise.resolve(null)),
    release() {
      view?.close();
      view = null;
      opening = null;
      using = null;
    },
  };
}
