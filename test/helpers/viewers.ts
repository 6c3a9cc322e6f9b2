/**
 * WebRTC viewers for tests whose server runs either sender: libwebrtc (@roamhq/wrtc) in a child
 * process (test/helpers/wrtc-viewers.ts), the signalling in the test's own process over the
 * viewer's real framehost connection. The test's process then never loads wrtc, so the same test
 * runs against `webrtc.sender: 'wrtc'` and `'room'` (node-datachannel), which were not cleared to
 * share a process. A viewer offers to receive video (and to send a camera if asked), trickles its
 * loopback candidates both ways, and counts the frames it decodes.
 */
import { ChildRpc, type ChildEvent } from '../../bench/child-rpc.ts';
import type { FramehostClient } from '../../src/client/client.ts';
import type { Result } from '../../src/errors.ts';
import type { WebRtcCandidate } from '../../src/transport/webrtc/wire.ts';
import type { LastFrame, ViewersEvent, ViewersRequest } from './wrtc-viewers.ts';

/** What libwebrtc's getStats says of one peer: plain records by type. */
export type ViewerStat = Record<string, unknown> & { id: string; type: string };

export interface RemoteViewer {
  readonly peerId: string;
  /** The offer it made (a renegotiation storm resends it), and the server's answer. */
  readonly offer: string;
  readonly answer: string;
  /** Decoded frames so far (told by the child as each is decoded). */
  readonly frames: number;
  /** The last decoded frame (I420), null before the first. */
  last(): Promise<{ width: number; height: number; data: Uint8Array } | null>;
  stats(): Promise<ViewerStat[]>;
  close(): Promise<void>;
}

class Viewer implements RemoteViewer {
  frames = 0;
  closed = false;
  constructor(
    private readonly rpc: ChildRpc<ViewersRequest>,
    private readonly index: number,
    readonly peerId: string,
    readonly offer: string,
    readonly answer: string,
    private readonly off: () => void,
  ) {}

  async last(): Promise<{ width: number; height: number; data: Uint8Array } | null> {
    const l = await this.rpc.ask<LastFrame | null>({ type: 'last', index: this.index });
    return l && { width: l.width, height: l.height, data: new Uint8Array(Buffer.from(l.data, 'base64')) };
  }

  stats(): Promise<ViewerStat[]> {
    return this.rpc.ask<ViewerStat[]>({ type: 'stats', index: this.index });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.off();
    await this.rpc.ask({ type: 'drop', index: this.index });
  }
}

/** One child process holding any number of viewers; close() ends it. */
export class WrtcViewers {
  private readonly rpc = new ChildRpc<ViewersRequest>(new URL('./wrtc-viewers.ts', import.meta.url));
  /** Per viewer index: its handler of the child's events, or those told before it had one. */
  private readonly handlers = new Map<number, (e: ViewersEvent) => void>();
  private readonly early = new Map<number, ViewersEvent[]>();
  /** Indices below this one have had their handler: an event for one without a handler is of a closed viewer. */
  private handled = 0;
  private readonly open = new Set<Viewer>();

  constructor() {
    this.rpc.onEvent((e: ChildEvent) => {
      const ev = e as unknown as ViewersEvent;
      const h = this.handlers.get(ev.index);
      if (h) h(ev);
      else if (ev.index >= this.handled) this.early.set(ev.index, [...(this.early.get(ev.index) ?? []), ev]);
    });
  }

  get pid(): number | undefined {
    return this.rpc.pid;
  }

  /** An offer SDP made by libwebrtc and thrown away (for bad-input tests). */
  sdp(direction: 'recvonly' | 'sendonly'): Promise<string> {
    return this.rpc.ask<string>({ type: 'sdp', direction });
  }

  /** Negotiate a viewer on `client`'s connection, as the page does; a refused offer throws its code. */
  async connect(client: FramehostClient, options: { camera?: boolean; inputTrack?: string } = {}): Promise<RemoteViewer> {
    const { index, sdp } = await this.rpc.ask<{ index: number; sdp: string }>({ type: 'offer', camera: options.camera ?? false });
    let peerId: string | null = null;
    let viewer: Viewer | null = null;
    const pending: WebRtcCandidate[] = [];
    this.handlers.set(index, (e) => {
      if (e.event === 'frames' && viewer) viewer.frames = e.frames;
      else if (e.event === 'candidate' && peerId) void client.request('webrtc:candidate', { peerId, candidate: e.candidate });
      else if (e.event === 'candidate') pending.push(e.candidate);
    });
    this.handled = Math.max(this.handled, index + 1);
    for (const e of this.early.get(index) ?? []) this.handlers.get(index)!(e);
    this.early.delete(index);
    // The server may trickle before the answer's ack arrives: keep those until the answer is applied.
    const fromServer: { peerId: string; candidate: WebRtcCandidate }[] = [];
    let answered = false;
    const offServer = client.on('webrtc:candidate', ({ peerId: id, candidate }) => {
      if (!candidate || (answered && id !== peerId)) return;
      if (!answered) fromServer.push({ peerId: id, candidate });
      else void this.rpc.ask({ type: 'candidate', index, candidate }).catch(() => undefined);
    });
    const off = (): void => {
      offServer();
      this.handlers.delete(index);
      if (viewer) this.open.delete(viewer); // a closed viewer keeps nothing (its client above all) alive here
    };
    const r = (await client.request('webrtc:offer', { sdp, ...(options.inputTrack ? { inputTrack: options.inputTrack } : {}) })) as Result<{ peerId: string; sdp: string }>;
    if (!r.ok) {
      off();
      await this.rpc.ask({ type: 'drop', index });
      throw new Error(`offer refused: ${r.error.code}: ${r.error.message}`);
    }
    peerId = r.peerId;
    viewer = new Viewer(this.rpc, index, r.peerId, sdp, r.sdp, off);
    this.open.add(viewer);
    await this.rpc.ask({ type: 'answer', index, sdp: r.sdp });
    answered = true;
    for (const c of fromServer.splice(0)) if (c.peerId === peerId) await this.rpc.ask({ type: 'candidate', index, candidate: c.candidate });
    for (const c of pending.splice(0)) void client.request('webrtc:candidate', { peerId, candidate: c });
    return viewer;
  }

  /** Every viewer still open closed (each forgets itself as it closes: nothing here outlives it). */
  async closeViewers(): Promise<void> {
    await Promise.allSettled([...this.open].map((v) => v.close()));
  }

  /** Every viewer closed, and the process gone. */
  async close(): Promise<void> {
    for (const v of this.open) v.closed = true;
    this.open.clear();
    await this.rpc.close();
  }
}
