/**
 * The fleet client: ask a gateway for a ride, follow the queue, go to the assigned node with
 * the ticket, and ride there; when the node is lost, go back to waiting and follow the next
 * assignment, all by itself. Browser-safe (socket.io-client and the framehost client only).
 *
 * ```ts
 * const ride = FleetClient.connect('https://rides.example.com');
 * ride.on('queue', ({ position }) => show(`you are number ${position}`));
 * ride.onFrame(({ meta, data }) => draw(meta, data));
 * await ride.session();            // the session runs on a node
 * await ride.command('stamp', { x: 10, y: 10 });
 * await ride.stop();               // or leave: a waiting ride leaves the queue after the grace
 * ```
 *
 * The gateway's `ended` is the one word on how a ride ended: a node's `session:ended` alone may
 * be a node that fenced itself, after which the ride goes on elsewhere.
 */
import { io, type Socket } from 'socket.io-client';
import { errorValue, FramehostError, isErrorCode, type ErrorValue, type Result } from '../errors.ts';
import { FramehostClient, type ClientFrame } from '../client/client.ts';
import type { StartRequest } from '../transport/socket/events.ts';
import { Emitter } from '../util/emitter.ts';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, QueueNotice, RequeueNotice, RideEnd, RideGrant } from './events.ts';

type GatewaySocket = Socket<GatewayServerToClient, GatewayClientToServer>;

export interface FleetClientOptions {
  /** Shared secret of the gateway's handshake, if it requires one. */
  readonly authToken?: string;
  /** Shared secret of the nodes' handshake, if they require one. */
  readonly nodeAuthToken?: string;
  /** Bound on each request and connection, ms (default 5000). */
  readonly timeoutMs?: number;
  /** How the session's frames are sent (the ticket is added by the client). */
  readonly start?: Omit<StartRequest, 'ticket'>;
  /** Reconnect to the gateway (and resume the ride) after a network drop; default true. */
  readonly reconnection?: boolean;
}

export interface FleetSession {
  readonly jobId: string;
  readonly sessionId: string;
  readonly node: string;
  readonly url: string;
  readonly attempt: number;
}

export interface FleetClientEvents {
  /** Accepted into the queue (or resumed after a reconnect). */
  requested: RideGrant;
  /** Your place in line changed (1 is next). */
  queue: QueueNotice;
  /** A node took the ride: the client is on its way there. */
  assigned: Assignment;
  /** The session runs on the assigned node. */
  session: FleetSession;
  /** The node holding the ride was lost; the ride is back in the queue (at its head). */
  requeued: RequeueNotice;
  /** The ride is over; the client closes its connections. */
  ended: RideEnd;
  /** Something went wrong that the ride survives or that ends it (see `ended`). */
  error: { readonly during: 'connect' | 'request' | 'node'; readonly error: ErrorValue };
}

export type FleetFrame = ClientFrame & { readonly node: string };

const TRANSIENT = new Set(['not_ready', 'busy', 'timeout', 'rate_limited']);

export class FleetClient {
  readonly gateway: GatewaySocket;
  /** The ride's id and resume secret once the gateway accepted it. */
  grant: RideGrant | null = null;
  position: number | null = null;
  assignment: Assignment | null = null;
  /** The node client of the current assignment (null while waiting). */
  node: FramehostClient | null = null;
  current: FleetSession | null = null;
  result: RideEnd | null = null;
  private readonly timeoutMs: number;
  private readonly events = new Emitter<FleetClientEvents>((err) => queueMicrotask(() => { throw err; }));
  private readonly frameListeners = new Set<(frame: FleetFrame) => void>();
  /** Bumped at every assignment and requeue: work for an older one stops. */
  private epoch = 0;
  private closed = false;

  private constructor(
    url: string,
    private readonly options: FleetClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.gateway = io(url, {
      transports: ['websocket'],
      auth: options.authToken ? { token: options.authToken } : {},
      reconnection: options.reconnection ?? true,
      forceNew: true,
      timeout: this.timeoutMs,
    });
    const g = this.gateway;
    g.on('connect', () => void this.request());
    g.on('connect_error', (err: Error & { data?: unknown }) => {
      const data = err.data as { code?: unknown; message?: unknown } | undefined;
      const error = isErrorCode(data?.code) ? errorValue(data.code, String(data.message ?? '')) : errorValue('internal', err.message);
      this.events.emit('error', { during: 'connect', error });
      // A refusal by the gateway (bad secret, full) is final; a network error is retried by socket.io.
      if (isErrorCode(data?.code)) this.finish({ jobId: this.grant?.jobId ?? '', reason: 'failed', error });
    });
    g.on('queue', (n) => {
      this.position = n.position;
      this.events.emit('queue', n);
    });
    g.on('assigned', (a) => this.follow(a));
    g.on('requeued', (n) => {
      this.epoch++;
      this.dropNode();
      this.assignment = null;
      this.events.emit('requeued', n);
    });
    g.on('ended', (e) => this.finish(e));
  }

  /** Connect to a gateway and ask for a ride; listeners added in the same tick miss nothing. */
  static connect(gatewayUrl: string, options: FleetClientOptions = {}): FleetClient {
    return new FleetClient(gatewayUrl, options);
  }

  on<K extends keyof FleetClientEvents>(event: K, fn: (payload: FleetClientEvents[K]) => void): () => void {
    return this.events.on(event, fn);
  }

  /** Frames of the ride, from whichever node serves it now. */
  onFrame(fn: (frame: FleetFrame) => void): () => void {
    this.frameListeners.add(fn);
    return () => this.frameListeners.delete(fn);
  }

  /** Resolves when a session runs on a node (at once if one does); rejects if the ride ends first or after `ms`. */
  session(ms = 600_000): Promise<FleetSession> {
    if (this.current) return Promise.resolve(this.current);
    return this.next('session', ms);
  }

  /** Resolves with how the ride ended. */
  ended(ms = 600_000): Promise<RideEnd> {
    if (this.result) return Promise.resolve(this.result);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new FramehostError('timeout', `the ride did not end within ${ms} ms`));
      }, ms);
      const off = this.events.on('ended', (e) => {
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }

  private next<K extends 'session'>(event: K, ms: number): Promise<FleetClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        offs.forEach((f) => f());
        reject(new FramehostError('timeout', `no ${event} within ${ms} ms`));
      }, ms);
      const offs = [
        this.events.on(event, (v) => {
          clearTimeout(timer);
          offs.forEach((f) => f());
          resolve(v);
        }),
        this.events.on('ended', (e) => {
          clearTimeout(timer);
          offs.forEach((f) => f());
          reject(e.error ? FramehostError.from(e.error) : new FramehostError('no_session', `the ride ended (${e.reason})`));
        }),
      ];
    });
  }

  /** Send a command to the session (owner only, while it runs on a node). */
  async command(name: string, args: Record<string, unknown> = {}): Promise<{ requestId: string }> {
    if (!this.node || !this.current) throw new FramehostError('no_session', 'the ride has no running session');
    return this.node.command(name, args);
  }

  /** End the ride: stop the session on its node, or leave the queue while waiting. */
  async stop(): Promise<void> {
    // Boarding (the start's answer may trail the first frames): the session is a moment away.
    if (this.node && this.assignment && !this.current) await this.session(this.timeoutMs);
    if (this.node && this.current) return this.node.stop();
    const r = await this.gatewayRequest('ride:cancel', {});
    if (!r.ok) throw FramehostError.from(r.error);
  }

  /** Close every connection. A waiting ride leaves the queue after the gateway's reconnect grace. */
  close(): void {
    this.closed = true;
    this.epoch++;
    this.dropNode();
    this.gateway.close();
  }

  private async gatewayRequest<E extends keyof GatewayClientToServer>(event: E, payload: Parameters<GatewayClientToServer[E]>[0]): Promise<Result<Record<string, unknown>>> {
    const timed = this.gateway.timeout(this.timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<Result<Record<string, unknown>>> };
    try {
      return await timed.emitWithAck(event, payload);
    } catch {
      return { ok: false, error: errorValue('timeout', `no answer to ${event} within ${this.timeoutMs} ms`) };
    }
  }

  /** Ask for the ride, or take it over again after a reconnect. */
  private async request(): Promise<void> {
    if (this.closed || this.result) return;
    const r = await this.gatewayRequest('ride:request', this.grant ? { resume: this.grant } : {});
    if (r.ok) {
      this.grant = { jobId: String(r.jobId), secret: String(r.secret) };
      this.events.emit('requested', this.grant);
      return;
    }
    this.events.emit('error', { during: 'request', error: r.error });
    if (r.error.code === 'timeout' || r.error.code === 'queue_unavailable' || r.error.code === 'rate_limited') {
      setTimeout(() => void (this.gateway.connected && this.request()), 1000);
      return;
    }
    this.finish({ jobId: this.grant?.jobId ?? '', reason: 'failed', error: r.error });
  }

  private follow(a: Assignment): void {
    if (this.closed || this.result) return;
    const same = this.assignment && this.assignment.attempt === a.attempt && this.assignment.ticket === a.ticket;
    if (same || (this.assignment && a.attempt < this.assignment.attempt)) return; // a repeat after a resume
    this.epoch++;
    this.dropNode();
    this.assignment = a;
    this.position = null;
    this.events.emit('assigned', a);
    void this.board(a, this.epoch);
  }

  /** Go to the node and start the session with the ticket. */
  private async board(a: Assignment, epoch: number): Promise<void> {
    let client: FramehostClient;
    try {
      const connecting = FramehostClient.connect(a.url, { reconnection: true, timeoutMs: this.timeoutMs, ...(this.options.nodeAuthToken ? { authToken: this.options.nodeAuthToken } : {}) });
      client = await boundConnect(connecting, this.timeoutMs);
    } catch (err) {
      if (epoch === this.epoch) this.events.emit('error', { during: 'node', error: err instanceof FramehostError ? err.toValue() : errorValue('internal', String(err)) });
      return; // the node's no-show timeout releases it; the gateway tells us what happens next
    }
    if (epoch !== this.epoch) return client.close();
    this.node = client;
    client.on('session:ended', ({ sessionId }) => {
      // Not the ride's end (the gateway says that): a fenced node's ride goes on elsewhere.
      if (this.node === client && this.current?.sessionId === sessionId) this.current = null;
    });
    client.onFrame((f) => {
      if (this.node !== client) return;
      const frame: FleetFrame = { ...f, node: a.node };
      for (const fn of this.frameListeners) fn(frame);
    });
    // A transiently refused start (the node's model reloading) is retried within the ticket's life.
    for (let tries = 0; ; tries++) {
      try {
        const { sessionId } = await client.start({ ...this.options.start, ticket: a.ticket });
        if (epoch !== this.epoch) return;
        this.current = { jobId: a.jobId, sessionId, node: a.node, url: a.url, attempt: a.attempt };
        this.events.emit('session', this.current);
        return;
      } catch (err) {
        const error = err instanceof FramehostError ? err.toValue() : errorValue('internal', String(err));
        if (epoch !== this.epoch) return;
        if (TRANSIENT.has(error.code) && tries < 20) {
          await new Promise((r) => setTimeout(r, 100 * Math.min(tries + 1, 5)));
          if (epoch !== this.epoch) return;
          continue;
        }
        this.events.emit('error', { during: 'node', error });
        return;
      }
    }
  }

  private dropNode(): void {
    this.current = null;
    if (this.node) {
      this.node.close();
      this.node = null;
    }
  }

  private finish(e: RideEnd): void {
    if (this.result) return;
    this.result = e;
    this.closed = true;
    this.epoch++;
    this.dropNode();
    this.gateway.close();
    this.events.emit('ended', e);
  }
}

/** FramehostClient.connect with a bound: a node that never answers must not hang the ride. */
function boundConnect(connecting: Promise<FramehostClient>, ms: number): Promise<FramehostClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new FramehostError('timeout', `the node did not accept a connection within ${ms} ms`));
    }, ms);
    connecting.then(
      (c) => {
        clearTimeout(timer);
        if (late) c.close();
        else resolve(c);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
