/**
 * The media stream: by default exactly one viewer at a time receives the session's frames and
 * messages. A new viewer attaching supersedes the old one (told `stream:detached`); the session
 * is not touched (the seed's media switch). In broadcast mode up to `maxViewers` watch at once.
 * A viewer is a Socket.IO sink (below) or a WebRTC peer's track (src/transport/webrtc).
 *
 * Slow viewers never slow the model: each viewer has one pending slot. A frame is written only
 * when the viewer can take it (flow `socket`: the socket's transport flushed the previous one;
 * flow `ack`: fewer than FRAME_ACK_WINDOW frames unacknowledged); until then a newer frame
 * replaces the pending one and the old one is counted as dropped. Memory per viewer is one
 * frame (plus the kernel's socket buffer), whatever the client does.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import { FRAME_ACK_WINDOW, type ClientToServerEvents, type Encoding, type FrameMeta, type ServerToClientEvents, type SocketData } from './events.ts';
import type { StreamSettings } from './validate.ts';
import { fail, type ErrorValue, type Result } from '../../errors.ts';

/** An acknowledgement that never comes frees its place in the window after this long. */
const ACK_TIMEOUT_MS = 5000;
import { encodeJpeg } from './encode.ts';

type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** The parts of engine.io's connection that tell whether the last write reached the kernel. */
interface EngineConn {
  readyState: string;
  writeBuffer: unknown[];
  transport: { writable: boolean; on(event: 'ready', fn: () => void): void; off(event: 'ready', fn: () => void): void };
  on(event: 'upgrade', fn: () => void): void;
  off(event: 'upgrade', fn: () => void): void;
}

export interface StreamCounters {
  sent(bytes: number): void;
  dropped(n: number): void;
}

/** Asked right before a frame is written: false withholds it (see TransportOptions.gate). */
export type MayLeave = () => boolean;
const always: MayLeave = () => true;

export class Viewer {
  private pending: RuntimeFrame | null = null;
  private encoding = false;
  private closed = false;
  private unacked = 0;
  dropped = 0;
  sent = 0;
  private readonly conn: EngineConn;
  private boundTransport: EngineConn['transport'] | null = null;
  private readonly flushSoon = (): void => this.flush();
  private readonly rebind = (): void => this.bindTransport();

  readonly encodingName: Encoding;

  constructor(
    readonly socket: FramehostSocket,
    private readonly settings: StreamSettings,
    private readonly counters: StreamCounters,
    private readonly log: Logger,
    private readonly mayLeave: MayLeave = always,
  ) {
    this.encodingName = settings.encoding;
    this.conn = socket.conn as unknown as EngineConn;
    this.bindTransport();
    this.conn.on('upgrade', this.rebind);
  }

  private bindTransport(): void {
    this.boundTransport?.off('ready', this.flushSoon);
    this.boundTransport = this.conn.transport;
    this.boundTransport.on('ready', this.flushSoon);
  }

  private writable(): boolean {
    if (this.settings.flow === 'ack' && this.unacked >= FRAME_ACK_WINDOW) return false;
    return this.conn.readyState === 'open' && this.conn.transport.writable && this.conn.writeBuffer.length === 0;
  }

  offer(frame: RuntimeFrame): void {
    if (this.closed) return;
    if (this.pending) {
      this.dropped += this.pending.count;
      this.counters.dropped(this.pending.count);
    }
    this.pending = frame;
    this.flush();
  }

  private flush(): void {
    if (this.closed || !this.pending || this.encoding || !this.writable()) return;
    const frame = this.pending;
    this.pending = null;
    if (this.encodingName === 'jpeg') {
      this.encoding = true;
      encodeJpeg(frame, this.settings.quality).then(
        (jpeg) => {
          this.encoding = false;
          this.write(frame, 'jpeg', jpeg);
          this.flush();
        },
        (err: unknown) => {
          this.encoding = false;
          this.log.warn({ err }, 'jpeg encoding failed; frame dropped');
        },
      );
      return;
    }
    this.write(frame, frame.format, frame.data);
  }

  private write(frame: RuntimeFrame, format: FrameMeta['format'], data: Uint8Array): void {
    // The last synchronous point before the wire (after any JPEG encoding): the gate decides here.
    if (this.closed || !this.mayLeave()) return;
    const meta: FrameMeta = {
      sessionId: frame.sessionId,
      seq: frame.seq,
      width: frame.width,
      height: frame.height,
      format,
      count: frame.count,
      t: frame.t,
      inferMs: frame.inferMs,
      dropped: this.dropped,
    };
    if (this.settings.flow === 'ack') {
      this.unacked++;
      // Either the ack or its timeout frees the place in the window.
      this.socket.timeout(ACK_TIMEOUT_MS).emit('frame', meta, data, () => {
        this.unacked--;
        this.flush();
      });
    } else {
      this.socket.emit('frame', meta, data);
    }
    this.sent += frame.count;
    this.counters.sent(data.byteLength);
  }

  close(): void {
    this.closed = true;
    this.pending = null;
    this.boundTransport?.off('ready', this.flushSoon);
    this.conn.off('upgrade', this.rebind);
  }
}

/** Anything the router feeds: a Socket.IO viewer, or a WebRTC peer's track (src/transport/webrtc). */
export interface StreamSink {
  readonly socket: FramehostSocket;
  offer(frame: RuntimeFrame): void;
  close(): void;
}

/**
 * A viewer without a Socket.IO connection (a WHEP player, src/transport/webrtc/whep.ts): it
 * watches, never controls, and is told nothing over Socket.IO. It ends when its peer does.
 */
export interface Watcher {
  offer(frame: RuntimeFrame): void;
  close(): void;
}

export interface StreamRouting {
  /** `switch` (default): one viewer, a new one supersedes it. `broadcast`: up to `maxViewers` at once. */
  readonly mode: 'switch' | 'broadcast';
  readonly maxViewers: number;
  /** The sink for `encoding: 'webrtc'` (the connection's negotiated peer), or why there is none. */
  readonly mediaSink?: (socket: FramehostSocket) => StreamSink | ErrorValue;
  /** The transport's gate (fleet nodes: the lease), asked synchronously before any frame leaves. */
  readonly mayLeave?: MayLeave;
}

const SWITCH: StreamRouting = { mode: 'switch', maxViewers: 1 };

/**
 * Routes frames and model messages to the viewers: the one current viewer (switch), or every
 * spectator (broadcast). Each sink takes the newest frame on its own, so one slow spectator
 * costs the others nothing.
 */
export class StreamRouter {
  private readonly sinks = new Map<string, StreamSink>();
  /** Viewers without a connection, by their resource id; spectators, so broadcast mode only. */
  private readonly watchers = new Map<string, Watcher>();

  constructor(
    private readonly counters: StreamCounters,
    private readonly log: Logger,
    private readonly routing: StreamRouting = SWITCH,
  ) {}

  /** Whether `socket` may attach with `settings` (checked before a session starts for it). */
  admit(socket: FramehostSocket, settings: StreamSettings): Result {
    if (settings.encoding === 'webrtc') {
      if (!this.routing.mediaSink) return fail('webrtc_unavailable');
      const peer = this.routing.mediaSink(socket);
      if ('code' in peer) return { ok: false, error: peer };
      peer.close(); // only asked; attach makes the real one
    }
    if (this.routing.mode === 'broadcast' && !this.sinks.has(socket.id) && this.sinks.size + this.watchers.size >= this.routing.maxViewers) {
      return fail('too_many_viewers', `limit ${this.routing.maxViewers}`);
    }
    return { ok: true };
  }

  attach(socket: FramehostSocket, settings: StreamSettings): Result {
    const admitted = this.admit(socket, settings);
    if (!admitted.ok) return admitted;
    const sink = settings.encoding === 'webrtc' ? (this.routing.mediaSink!(socket) as StreamSink) : new Viewer(socket, settings, this.counters, this.log, this.routing.mayLeave);
    this.sinks.get(socket.id)?.close();
    if (this.routing.mode === 'switch') {
      for (const previous of this.sinks.values()) {
        if (previous.socket.id === socket.id) continue;
        previous.close();
        previous.socket.emit('stream:detached', { reason: 'superseded' });
        this.log.info({ viewer: socket.id, previous: previous.socket.id }, 'stream switched to a new viewer');
      }
      this.sinks.clear();
    }
    this.sinks.set(socket.id, sink);
    return { ok: true };
  }

  detach(socketId: string, tell: boolean): boolean {
    const sink = this.sinks.get(socketId);
    if (!sink) return false;
    sink.close();
    if (tell) sink.socket.emit('stream:detached', { reason: 'detached' });
    this.sinks.delete(socketId);
    return true;
  }

  /**
   * Whether a viewer without a connection may watch now. Only in broadcast mode: in switch mode
   * the one viewer is the one that attached last over Socket.IO, and a watcher that never
   * controls must not take the stream from it. It counts against `maxViewers` like a spectator.
   */
  mayWatch(): Result {
    if (this.routing.mode !== 'broadcast') return fail('too_many_viewers', 'the server streams to one viewer (switch mode); WHEP players watch with --viewers broadcast');
    if (this.sinks.size + this.watchers.size >= this.routing.maxViewers) return fail('too_many_viewers', `limit ${this.routing.maxViewers}`);
    return { ok: true };
  }

  /** A watcher joins the spectators (checked by `mayWatch` first). */
  watch(id: string, watcher: Watcher): Result {
    const may = this.mayWatch();
    if (!may.ok) return may;
    this.watchers.set(id, watcher);
    return { ok: true };
  }

  /** A watcher leaves (its peer closed or was deleted); false when it was not watching. */
  unwatch(id: string): boolean {
    const w = this.watchers.get(id);
    if (!w) return false;
    this.watchers.delete(id); // first: closing it comes back here through its peer
    w.close();
    return true;
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Every viewer: one in switch mode, the spectators in broadcast mode. */
  viewers(): StreamSink[] {
    return [...this.sinks.values()];
  }

  frame(frame: RuntimeFrame): void {
    // Checked here for every sink (a WebRTC track has no later point before the encoder), and
    // again by a Socket.IO viewer right before it writes (its JPEG encoding is asynchronous).
    if (this.routing.mayLeave && !this.routing.mayLeave()) return;
    for (const sink of this.sinks.values()) sink.offer(frame);
    for (const watcher of this.watchers.values()) watcher.offer(frame);
  }

  /** The server closes: every watcher's peer with it. */
  close(): void {
    for (const id of [...this.watchers.keys()]) this.unwatch(id);
  }
}
