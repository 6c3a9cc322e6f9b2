/**
 * The typed framehost client, for Node and the browser (`framehost/client`). Built on
 * socket.io-client with the same event map as the server. Every request has a timeout (an
 * acknowledgement that never comes must not hang the caller), and a refusal becomes a
 * `FramehostError` with the server's code.
 *
 * Reconnects: socket.io-client reconnects by itself; on reconnect this client presents its
 * session token again (`session:resume`) to regain control, and re-attaches if it was the viewer.
 */
import { io, type Socket } from 'socket.io-client';
import { errorValue, FramehostError, isErrorCode, type Result } from '../errors.ts';
import type { Capabilities } from '../model/capabilities.ts';
import type { Phase } from '../machines/phase.ts';
import type { AttachRequest, CapabilitiesReply, ClientToServerEvents, FrameMeta, ServerToClientEvents, SessionView, StartRequest } from '../transport/socket/events.ts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ClientOptions {
  /** The credential the handshake presents as `auth: { token }`: the shared secret, or an access token (JWT). */
  readonly authToken?: string;
  /** Request timeout, ms (default 5000). */
  readonly timeoutMs?: number;
  /** Default: websocket only (frames over long-polling are ~25× slower). */
  readonly transports?: ('websocket' | 'polling')[];
  readonly reconnection?: boolean;
}

type Listener<A extends unknown[]> = (...args: A) => void;

export interface ClientFrame {
  readonly meta: FrameMeta;
  readonly data: Uint8Array;
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(0);
}

export class FramehostClient {
  readonly socket: ClientSocket;
  private readonly timeoutMs: number;
  /** Proof of control over the session this client started. */
  sessionToken: string | null = null;
  sessionId: string | null = null;
  private viewing: AttachRequest | null = null;
  private readonly frameListeners = new Set<(frame: ClientFrame) => void>();

  private constructor(socket: ClientSocket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    socket.on('frame', this.dispatchFrame as never);
    socket.io.on('reconnect', () => void this.restore());
    socket.on('session:ended', ({ sessionId }) => {
      if (sessionId === this.sessionId) {
        this.sessionId = null;
        this.sessionToken = null;
      }
    });
    socket.on('stream:detached', () => {
      this.viewing = null;
    });
  }

  /** Connect; rejects with the server's coded error (unauthorized, too_many_connections…). */
  static connect(url: string, options: ClientOptions = {}): Promise<FramehostClient> {
    const socket: ClientSocket = io(url, {
      transports: options.transports ?? ['websocket'],
      auth: options.authToken ? { token: options.authToken } : {},
      reconnection: options.reconnection ?? true,
      forceNew: true,
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { data?: unknown }): void => {
        socket.off('connect', onConnect);
        socket.close();
        const data = err.data as { code?: unknown; message?: unknown } | undefined;
        reject(isErrorCode(data?.code) ? new FramehostError(data.code, String(data.message ?? err.message)) : new FramehostError('internal', err.message, { cause: err }));
      };
      const onConnect = (): void => {
        socket.off('connect_error', onError);
        resolve(new FramehostClient(socket, options.timeoutMs ?? 5000));
      };
      socket.once('connect', onConnect);
      socket.once('connect_error', onError);
    });
  }

  /** Send a request; resolve with the server's result value (never throws for a refusal). */
  async request<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<Result<Record<string, unknown>>> {
    // The typed overloads of emitWithAck do not model our Result union; the server's ack does.
    const timed = this.socket.timeout(this.timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<Result<Record<string, unknown>>> };
    try {
      return await timed.emitWithAck(event, payload);
    } catch {
      return { ok: false, error: errorValue('timeout', `no answer to ${event} within ${this.timeoutMs} ms`) };
    }
  }

  private async must<T>(event: keyof ClientToServerEvents, payload: object): Promise<T> {
    const r = await this.request(event, payload as never);
    if (!r.ok) throw FramehostError.from(r.error);
    return r as unknown as T;
  }

  /** Start a session (and become its viewer). Frames are acknowledged (flow `ack`) unless asked otherwise. */
  async start(options: StartRequest = {}): Promise<{ sessionId: string; token: string }> {
    const request = { flow: 'ack' as const, ...options };
    const r = await this.must<{ sessionId: string; token: string }>('session:start', request);
    this.sessionId = r.sessionId;
    this.sessionToken = r.token;
    this.viewing = { ...(request.encoding ? { encoding: request.encoding } : {}), ...(request.quality ? { quality: request.quality } : {}), flow: request.flow };
    return { sessionId: r.sessionId, token: r.token };
  }

  async stop(): Promise<void> {
    await this.must('session:stop', {});
  }

  async command(name: string, args: Record<string, unknown> = {}): Promise<{ requestId: string }> {
    const r = await this.must<{ requestId: string }>('session:command', { name, args });
    return { requestId: r.requestId };
  }

  /**
   * Regain control of a session with its token (after a reconnect, or from another process);
   * with an access token, the session of the token's user, with no session token needed.
   */
  async resume(token?: string): Promise<{ sessionId: string }> {
    const r = await this.must<{ sessionId: string }>('session:resume', token === undefined ? {} : { token });
    if (token !== undefined) this.sessionToken = token;
    this.sessionId = r.sessionId;
    return { sessionId: r.sessionId };
  }

  async attach(options: AttachRequest = {}): Promise<{ sessionId: string | null }> {
    const request = { flow: 'ack' as const, ...options };
    const r = await this.must<{ sessionId: string | null }>('stream:attach', request);
    this.viewing = request;
    return { sessionId: r.sessionId };
  }

  async detach(): Promise<void> {
    await this.must('stream:detach', {});
    this.viewing = null;
  }

  async capabilities(): Promise<CapabilitiesReply> {
    return this.must<CapabilitiesReply>('capabilities', {});
  }

  /**
   * Publish a frame on one of the model's input tracks (owner only). Fire and forget by
   * default, as a volatile emit: a frame the socket cannot take now is dropped rather than
   * queued, so a slow link never builds a backlog of stale video. With `{ ack: true }`, resolves
   * when the server accepted it and throws its coded error otherwise.
   */
  publish(track: string, frame: { data: Uint8Array; width: number; height: number; format: 'rgba' | 'rgb' }): void;
  publish(track: string, frame: { data: Uint8Array; width: number; height: number; format: 'rgba' | 'rgb' }, options: { ack: true }): Promise<void>;
  publish(track: string, frame: { data: Uint8Array; width: number; height: number; format: 'rgba' | 'rgb' }, options?: { ack: boolean }): void | Promise<void> {
    const meta = { track, width: frame.width, height: frame.height, format: frame.format };
    if (!options?.ack) {
      this.socket.volatile.emit('input:frame', meta, frame.data);
      return;
    }
    const timed = this.socket.timeout(this.timeoutMs) as unknown as { emitWithAck(e: string, m: unknown, d: unknown): Promise<Result> };
    return timed.emitWithAck('input:frame', meta, frame.data).then(
      (r) => {
        if (!r.ok) throw FramehostError.from(r.error);
      },
      () => {
        throw new FramehostError('timeout', `no answer to input:frame within ${this.timeoutMs} ms`);
      },
    );
  }

  private async restore(): Promise<void> {
    if (this.sessionToken) await this.request('session:resume', { token: this.sessionToken });
    if (this.viewing) await this.request('stream:attach', this.viewing);
  }

  onFrame(fn: (frame: ClientFrame) => void): () => void {
    this.frameListeners.add(fn);
    return () => this.frameListeners.delete(fn);
  }

  /** One listener for all: hands the frame to every onFrame listener, then acknowledges it. */
  private readonly dispatchFrame = (meta: FrameMeta, data: unknown, ack?: unknown): void => {
    const frame = { meta, data: toBytes(data) };
    for (const fn of this.frameListeners) {
      try {
        fn(frame);
      } catch (err) {
        console.error('framehost client: a frame listener threw', err); // the other listeners and the ack go on
      }
    }
    if (typeof ack === 'function') ack();
  };

  on<E extends keyof Omit<ServerToClientEvents, 'frame'>>(event: E, fn: Listener<Parameters<ServerToClientEvents[E]>>): () => void {
    this.socket.on(event, fn as never);
    return () => this.socket.off(event, fn as never);
  }

  close(): void {
    this.socket.close();
  }
}
