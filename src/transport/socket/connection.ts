/**
 * One socket's requests: each is validated, sent to the runtime (hence the chart), and acked
 * with the result. The per-connection state (its rate buckets, whether it is being rate
 * limited, when it last logged a refused input frame) lives here, one instance per socket.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import { fail, type ErrorValue, type Result } from '../../errors.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { Metrics } from '../http/metrics.ts';
import type { TransportOptions } from '../options.ts';
import { CLIENT_EVENTS, type ClientToServerEvents, type ServerToClientEvents, type SocketData } from './events.ts';
import { sessionView } from './session-view.ts';
import { SessionControl } from './control.ts';
import type { SubjectLimits } from './subject-limits.ts';
import { permits, roleRefusal, type Right } from '../../auth/access.ts';
import type { StreamRouter } from './stream.ts';
import { TokenBucket } from './rate-limit.ts';
import { checkCommandRequest, checkEmpty, checkResume, checkStream, isPlainObject } from './validate.ts';
import { extraArgumentsMessage, splitAck } from './request-args.ts';
import { OncePer } from '../../util/once-per.ts';

export type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** What every connection shares: the runtime, the stream router, the session's control, the helpers over all sockets. */
export interface ConnectionContext {
  readonly runtime: Runtime;
  readonly options: TransportOptions;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly control: SessionControl;
  readonly stream: StreamRouter;
  readonly subjects: SubjectLimits;
  /** The gate's refusal of an incoming request (fleet nodes: the lease), or null when it may enter. */
  readonly gateRefusal: () => Result | null;
  /** Tell every connection the session's owner presence and command state. */
  readonly tellSession: () => void;
  /** The connected sockets that control the session of `ownerId`. */
  readonly socketsOf: (ownerId: string | null) => FramehostSocket[];
}

/** Socket.IO hands binary as a Buffer in Node; anything else is not a frame. */
function toBytes(data: unknown): unknown {
  return data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** The chart's owner id for a socket that controls nothing: never equal to a real owner. */
export const viewerIdentity = (socket: FramehostSocket): string => socket.data.ownerId ?? `viewer-${socket.id}`;

export class Connection {
  private readonly clog: Logger;
  private readonly bucket: TokenBucket;
  private readonly inputBucket: TokenBucket;
  /** Whether the last request was rate limited: the first of a run is logged, the rest are not. */
  private limited = false;
  private readonly inputLog = new OncePer(1000);
  private readonly inputNotice = new OncePer(1000);

  constructor(
    private readonly socket: FramehostSocket,
    private readonly ctx: ConnectionContext,
  ) {
    socket.data.ownerId = null;
    this.clog = ctx.log.child({ socket: socket.id });
    this.bucket = new TokenBucket(ctx.options.requestsPerSecond, ctx.options.requestBurst);
    // Input frames: many a second, so they have their own bucket.
    this.inputBucket = new TokenBucket(ctx.options.inputFramesPerSecond, ctx.options.inputFramesPerSecond * 2);
  }

  /** Register every handler on the socket. */
  listen(): void {
    const { socket } = this;
    socket.onAny((event: string, ...args: unknown[]) => this.unknown(event, args));
    this.handle('session:start', 'play', (req) => this.start(req));
    this.handle('session:stop', 'play', (req) => this.stop(req));
    this.handle('session:resume', 'play', (req) => this.resume(req));
    this.handle('session:command', 'play', (req) => this.command(req));
    this.handle('stream:attach', 'watch', (req) => this.attach(req));
    this.handle('stream:detach', 'watch', (req) => this.detach(req));
    this.handle('capabilities', 'watch', (req) => this.capabilities(req));
    socket.on('input:frame', ((...args: unknown[]) => this.inputFrame(args)) as never);
    socket.on('disconnect', (reason) => this.disconnected(reason));
  }

  private unknown(event: string, args: unknown[]): void {
    if ((CLIENT_EVENTS as readonly string[]).includes(event)) return;
    this.clog.warn({ event: String(event).slice(0, 64) }, 'unknown event');
    splitAck(args).ack?.(fail('bad_request', `unknown event ${JSON.stringify(String(event).slice(0, 64))}`));
  }

  /** The per-request checks before a handler runs: the role, then the user's and the connection's rates. */
  private refusal(right: Right): { ok: false; error: ErrorValue } | null {
    const { options, subjects } = this.ctx;
    const principal = this.socket.data.principal;
    const role = roleRefusal(principal, right);
    if (role) return role;
    if (principal.sub !== null && !subjects.take(principal.sub)) return fail('rate_limited', `more than ${options.requestsPerSecondPerSub} requests/s for this user`);
    if (!this.bucket.take()) return fail('rate_limited', `more than ${options.requestsPerSecond} requests/s`);
    return null;
  }

  /**
   * Register a request handler: the ack is the last argument when it is a function (required),
   * one payload argument at most (more: `bad_request`), rate limited, never throws, refusals logged.
   */
  private handle<E extends keyof ClientToServerEvents>(event: E, right: Right, fn: (req: unknown) => Result): void {
    this.socket.on(event, ((...args: unknown[]) => {
      const { ack, payload } = splitAck(args);
      if (!ack) {
        this.clog.warn({ event }, 'request without acknowledgement ignored');
        return;
      }
      const result = this.answer(event, right, payload, fn);
      if (!result.ok) {
        this.ctx.metrics.commandError(result.error.code);
        if (result.error.code !== 'rate_limited') this.clog.info({ event, code: result.error.code }, 'request refused');
      }
      this.acknowledge(ack, result, event);
    }) as never);
  }

  /** A request's result: a refusal, too many arguments, or what its handler returns (a throw is `internal`). */
  private answer(event: string, right: Right, payload: readonly unknown[], fn: (req: unknown) => Result): Result {
    const refused = this.refusal(right);
    if (refused) {
      if (refused.error.code === 'rate_limited' && !this.limited) this.clog.warn({ event }, 'rate limited');
      this.limited = refused.error.code === 'rate_limited';
      return refused;
    }
    this.limited = false;
    if (payload.length > 1) return fail('bad_request', extraArgumentsMessage(event, 1, payload.length));
    try {
      return fn(payload[0]);
    } catch (err) {
      this.clog.error({ err, event }, 'request handler threw');
      return fail('internal');
    }
  }

  /** A client's ack that throws is logged, never fatal (the server never dies of a client's mistake). */
  private acknowledge(ack: (r: Result) => void, result: Result, event: string): void {
    try {
      ack(result);
    } catch (err) {
      this.clog.warn({ err, event }, 'acknowledgement failed');
    }
  }

  private start(req: unknown): Result<{ sessionId: string; token: string }> {
    const { options, stream, runtime, control } = this.ctx;
    const { socket } = this;
    const s = checkStream(req, options.jpegQuality);
    if (!s.ok) return s;
    if (options.admit) {
      const ticket = (req as { ticket?: unknown }).ticket;
      if (ticket !== undefined && (typeof ticket !== 'string' || ticket.length > 4096)) return fail('bad_request', 'ticket must be a string');
      const sub = socket.data.principal.sub;
      const admitted = options.admit({ ticket, ...(sub !== null ? { sub } : {}) });
      if (!admitted.ok) return admitted;
    }
    const viewable = stream.admit(socket, s.value); // checked before the session exists
    if (!viewable.ok) return viewable;
    const { ownerId, token } = SessionControl.newOwner();
    const p = socket.data.principal;
    // A token user's session is theirs (resume by `sub`); an expired token starts none (the chart decides).
    const r = runtime.start({ owner: ownerId, ...(p.kind === 'token' ? { subject: { sub: p.sub, expiresAt: p.expiresAt, presentedAt: Date.now() } } : {}) });
    if (!r.ok) return r;
    control.grantTo(r.sessionId, ownerId, token);
    socket.data.ownerId = ownerId;
    stream.attach(socket, s.value);
    return { ok: true, sessionId: r.sessionId, token };
  }

  private stop(req: unknown): Result {
    const c = checkEmpty(req);
    return c.ok ? this.ctx.runtime.stop({ owner: viewerIdentity(this.socket) }) : c;
  }

  private resume(req: unknown): Result<{ sessionId: string }> {
    const { runtime, control } = this.ctx;
    const sub = this.socket.data.principal.sub;
    const c = checkResume(req, sub !== null);
    if (!c.ok) return c;
    // A token user takes back the session of its `sub` (the chart's rule), session token or not;
    // without tokens, the session token is the proof.
    const resumed = sub !== null ? runtime.resume({ sub }) : null;
    if (resumed && !resumed.ok) return resumed;
    const grant = sub !== null ? control.current() : control.verify(c.value.token ?? '');
    if (!grant) return fail(sub !== null ? 'no_session' : 'bad_token');
    this.socket.data.ownerId = grant.ownerId;
    runtime.ownerPresence(grant.sessionId, true);
    this.ctx.tellSession();
    this.clog.info({ sessionId: grant.sessionId }, 'owner resumed control');
    return { ok: true, sessionId: grant.sessionId };
  }

  private command(req: unknown): Result {
    const c = checkCommandRequest(req, this.ctx.options.maxCommandBytes);
    if (!c.ok) return c;
    return this.ctx.gateRefusal() ?? this.ctx.runtime.command(c.value.name, c.value.args, { owner: viewerIdentity(this.socket) });
  }

  private attach(req: unknown): Result<{ sessionId: string | null }> {
    const s = checkStream(req, this.ctx.options.jpegQuality);
    if (!s.ok) return s;
    const attached = this.ctx.stream.attach(this.socket, s.value);
    if (!attached.ok) return attached;
    return { ok: true, sessionId: this.ctx.runtime.status().session?.id ?? null };
  }

  private detach(req: unknown): Result {
    const c = checkEmpty(req);
    if (!c.ok) return c;
    this.ctx.stream.detach(this.socket.id, false);
    return { ok: true };
  }

  private capabilities(req: unknown): Result {
    const c = checkEmpty(req);
    if (!c.ok) return c;
    const { runtime } = this.ctx;
    const { principal } = this.socket.data;
    const you = { rights: (['play', 'watch', 'observe'] as const).filter((r) => permits(principal, r)), sub: principal.sub };
    const answer = { ok: true as const, ...runtime.capabilities, state: runtime.phase(), session: sessionView(runtime.status()), you };
    return answer;
  }

  /**
   * Input frames: many a second, so no ack is required; a refusal without one is told as
   * `input:rejected`, at most once a second, and logged the same way.
   */
  private inputFrame(args: unknown[]): void {
    const { ack, payload } = splitAck(args);
    const [meta] = payload;
    const result = this.publish(payload);
    if (ack) this.acknowledge(ack, result, 'input:frame');
    if (result.ok) return;
    this.ctx.metrics.commandError(result.error.code);
    const now = Date.now();
    if (this.inputLog.due(now)) this.clog.info({ code: result.error.code }, 'input frame refused');
    if (!ack && this.inputNotice.due(now)) {
      const track = isPlainObject(meta) && typeof meta.track === 'string' ? meta.track.slice(0, 64) : '';
      this.socket.emit('input:rejected', { track, error: result.error });
    }
  }

  /** An input frame's result: refused (role, rate, shape, gate) or what the runtime says. */
  private publish(payload: readonly unknown[]): Result {
    const { options, runtime } = this.ctx;
    const [meta, data] = payload;
    try {
      const role = roleRefusal(this.socket.data.principal, 'play');
      if (role) return role;
      if (!this.inputBucket.take()) return fail('rate_limited', `more than ${options.inputFramesPerSecond} input frames/s`);
      if (payload.length > 2) return fail('bad_request', extraArgumentsMessage('input:frame', 2, payload.length));
      if (!isPlainObject(meta)) return fail('bad_request', 'input:frame needs (meta { track, width, height, format }, bytes)');
      return this.ctx.gateRefusal() ?? runtime.publish(meta.track, { data: toBytes(data), width: meta.width, height: meta.height, format: meta.format }, { owner: viewerIdentity(this.socket) });
    } catch (err) {
      this.clog.error({ err }, 'input handler threw');
      return fail('internal');
    }
  }

  /** The owner's last connection gone: the chart starts its orphan timeout. */
  private disconnected(reason: string): void {
    const { stream, control, runtime } = this.ctx;
    const { socket } = this;
    stream.detach(socket.id, false);
    const grant = control.current();
    if (grant && socket.data.ownerId === grant.ownerId && this.ctx.socketsOf(grant.ownerId).every((s) => s.id === socket.id)) {
      this.clog.info({ reason, sessionId: grant.sessionId }, 'session owner disconnected; orphan timeout running');
      runtime.ownerPresence(grant.sessionId, false);
      this.ctx.tellSession();
    }
  }
}
