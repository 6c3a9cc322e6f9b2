/**
 * The Socket.IO protocol: client events become runtime requests (hence chart events), and the
 * chart's answer goes back in the acknowledgement. The transport adds no lifecycle rule: it
 * validates, maps sockets to owners and viewers, and sends (STYLE.md, rule 4).
 */
import type { Server, Socket } from 'socket.io';
import type { Logger } from 'pino';
import { fail, type ErrorValue, type Result } from '../errors.ts';
import type { Runtime } from '../runtime.ts';
import type { Metrics } from './metrics.ts';
import type { TransportOptions } from './options.ts';
import { CLIENT_EVENTS, type ClientToServerEvents, type ServerToClientEvents, type SocketData } from './events.ts';
import { sessionView } from './session-view.ts';
import { SessionControl } from './control.ts';
import { admissionMiddleware } from './admission.ts';
import { SubjectLimits } from './subject-limits.ts';
import { permits, roleRefusal, type Access, type Right } from '../auth/access.ts';
import { StreamRouter } from './stream.ts';
import { createMedia, type Media } from './webrtc/signalling.ts';
import { DEFAULT_WEBRTC } from './webrtc/options.ts';
import { TokenBucket } from './rate-limit.ts';
import { checkCommandRequest, checkEmpty, checkResume, checkStream, isPlainObject } from './validate.ts';
import { ConnectionSlots } from './connection-slots.ts';
import { extraArgumentsMessage, splitAck } from './request-args.ts';

/** Socket.IO hands binary as a Buffer in Node; anything else is not a frame. */
function toBytes(data: unknown): unknown {
  return data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export type FramehostServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface ProtocolDeps {
  readonly runtime: Runtime;
  readonly options: TransportOptions;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The credentials check (src/auth/access.ts), shared with the HTTP endpoints. */
  readonly access: Access;
}

/** The chart's owner id for a socket that controls nothing: never equal to a real owner. */
const viewerIdentity = (socket: FramehostSocket): string => socket.data.ownerId ?? `viewer-${socket.id}`;

export function attachProtocol(io: FramehostServer, deps: ProtocolDeps): { stream: StreamRouter; control: SessionControl; media: Media; detach(): void } {
  const { runtime, options, log, metrics, access } = deps;
  const control = new SessionControl();
  /** The gate (fleet nodes: the lease), asked synchronously at every frame, message, command and input frame. */
  const gate = options.gate;
  const mayLeave = (): boolean => gate === undefined || gate().ok;
  /** The gate's refusal of an incoming request, or null when it may enter. */
  const gateRefusal = (): Result | null => {
    const g = gate?.();
    return g && !g.ok ? g : null;
  };
  const media = createMedia({ runtime, options: { ...DEFAULT_WEBRTC, ...options.webrtc }, log, registry: metrics.registry, refused: metrics.commandError });
  const stream = new StreamRouter({ sent: metrics.frameSent, dropped: metrics.frameDropped }, log, {
    mode: options.viewers,
    maxViewers: options.maxViewers,
    mediaSink: media.sinkFor,
    mayLeave,
  });
  /** Runtime subscriptions, undone when the server closes (the runtime outlives it). */
  const subscriptions: (() => void)[] = [];

  /** Every connection learns of a change of owner presence or command state (the controls follow). */
  const tellSession = (): void => {
    const view = sessionView(runtime.status());
    if (view) io.emit('session:update', view);
  };

  const socketsOf = (ownerId: string | null): FramehostSocket[] =>
    ownerId ? [...io.sockets.sockets.values()].filter((s) => s.data.ownerId === ownerId) : [];

  subscriptions.push(
    runtime.on('frame', (frame) => stream.frame(frame)),
    runtime.on('message', (m) => {
      if (mayLeave()) stream.viewers().forEach((v) => v.socket.emit('message', m));
    }),
    // Only the owner sends commands, so a handler's failure goes to the owner's connections.
    runtime.on('command.failed', (e) => {
      for (const s of socketsOf(control.ownerOf(e.sessionId))) s.emit('command:failed', { requestId: e.requestId, error: e.error });
    }),
    runtime.on('phase', ({ phase }) => io.emit('state', { state: phase })),
    runtime.on('controls', tellSession),
    runtime.on('session.began', tellSession), // every page learns the session's id and its fresh state
    runtime.on('session.finished', (e) => {
      const recipients = new Set(socketsOf(control.ownerOf(e.sessionId)));
      for (const v of stream.viewers()) recipients.add(v.socket);
      for (const s of recipients) s.emit('session:ended', { sessionId: e.sessionId, reason: e.reason, ...(e.error ? { error: e.error } : {}) });
      for (const s of socketsOf(control.ownerOf(e.sessionId))) s.data.ownerId = null;
      control.revoke(e.sessionId);
    }),
  );

  // Admitted sockets, counted by us (src/transport/connection-slots.ts); the gauge follows the count.
  const slots = new ConnectionSlots(options.maxConnections, (n) => metrics.connections(n));
  const subjects = new SubjectLimits({ maxConnections: options.maxConnectionsPerSub, requestsPerSecond: options.requestsPerSecondPerSub, requestBurst: options.requestBurstPerSub });

  // Handshake (src/transport/admission.ts): credentials, connections per user, the connection
  // limit. Errors reach the client's `connect_error` with `.data = { code, message }`.
  io.use(admissionMiddleware({ access, slots, subjects, log }));

  /** The per-request checks before a handler runs: the role, then the user's and the connection's rates. */
  const refusalOf = (socket: FramehostSocket, right: Right, bucket: TokenBucket): { ok: false; error: ErrorValue } | null => {
    const principal = socket.data.principal;
    const role = roleRefusal(principal, right);
    if (role) return role;
    if (principal.sub !== null && !subjects.take(principal.sub)) return fail('rate_limited', `more than ${options.requestsPerSecondPerSub} requests/s for this user`);
    if (!bucket.take()) return fail('rate_limited', `more than ${options.requestsPerSecond} requests/s`);
    return null;
  };

  io.on('connection', (socket: FramehostSocket) => {
    socket.data.ownerId = null;
    const clog = log.child({ socket: socket.id });
    const bucket = new TokenBucket(options.requestsPerSecond, options.requestBurst);
    let limited = false;
    media.attach(socket, () => viewerIdentity(socket));

    socket.onAny((event: string, ...args: unknown[]) => {
      if ((CLIENT_EVENTS as readonly string[]).includes(event)) return;
      clog.warn({ event: String(event).slice(0, 64) }, 'unknown event');
      splitAck(args).ack?.(fail('bad_request', `unknown event ${JSON.stringify(String(event).slice(0, 64))}`));
    });

    /**
     * Register a request handler: the ack is the last argument when it is a function (required),
     * one payload argument at most (more: `bad_request`), rate limited, never throws, refusals logged.
     */
    function handle<E extends keyof ClientToServerEvents>(event: E, right: Right, fn: (req: unknown) => Result) {
      socket.on(event, ((...args: unknown[]) => {
        const { ack, payload } = splitAck(args);
        if (!ack) {
          clog.warn({ event }, 'request without acknowledgement ignored');
          return;
        }
        let result: Result;
        const refused = refusalOf(socket, right, bucket);
        if (refused) {
          result = refused;
          if (refused.error.code === 'rate_limited' && !limited) clog.warn({ event }, 'rate limited');
          limited = refused.error.code === 'rate_limited';
        } else if (payload.length > 1) {
          limited = false;
          result = fail('bad_request', extraArgumentsMessage(event, 1, payload.length));
        } else {
          limited = false;
          try {
            result = fn(payload[0]);
          } catch (err) {
            clog.error({ err, event }, 'request handler threw');
            result = fail('internal');
          }
        }
        if (!result.ok) {
          metrics.commandError(result.error.code);
          if (result.error.code !== 'rate_limited') clog.info({ event, code: result.error.code }, 'request refused');
        }
        try {
          ack(result);
        } catch (err) {
          clog.warn({ err, event }, 'acknowledgement failed');
        }
      }) as never);
    }

    handle('session:start', 'play', (req) => {
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
    });

    handle('session:stop', 'play', (req) => {
      const c = checkEmpty(req);
      return c.ok ? runtime.stop({ owner: viewerIdentity(socket) }) : c;
    });

    handle('session:resume', 'play', (req) => {
      const sub = socket.data.principal.sub;
      const c = checkResume(req, sub !== null);
      if (!c.ok) return c;
      // A token user takes back the session of its `sub` (the chart's rule), session token or not;
      // without tokens, the session token is the proof.
      const resumed = sub !== null ? runtime.resume({ sub }) : null;
      if (resumed && !resumed.ok) return resumed;
      const grant = sub !== null ? control.current() : control.verify(c.value.token ?? '');
      if (!grant) return fail(sub !== null ? 'no_session' : 'bad_token');
      socket.data.ownerId = grant.ownerId;
      runtime.ownerPresence(grant.sessionId, true);
      tellSession();
      clog.info({ sessionId: grant.sessionId }, 'owner resumed control');
      return { ok: true, sessionId: grant.sessionId };
    });

    handle('session:command', 'play', (req) => {
      const c = checkCommandRequest(req, options.maxCommandBytes);
      if (!c.ok) return c;
      return gateRefusal() ?? runtime.command(c.value.name, c.value.args, { owner: viewerIdentity(socket) });
    });

    handle('stream:attach', 'watch', (req) => {
      const s = checkStream(req, options.jpegQuality);
      if (!s.ok) return s;
      const attached = stream.attach(socket, s.value);
      if (!attached.ok) return attached;
      return { ok: true, sessionId: runtime.status().session?.id ?? null };
    });

    handle('stream:detach', 'watch', (req) => {
      const c = checkEmpty(req);
      if (!c.ok) return c;
      stream.detach(socket.id, false);
      return { ok: true };
    });

    handle('capabilities', 'watch', (req) => {
      const c = checkEmpty(req);
      if (!c.ok) return c;
      const { principal } = socket.data;
      const you = { rights: (['play', 'watch', 'observe'] as const).filter((r) => permits(principal, r)), sub: principal.sub };
      return { ok: true, ...runtime.capabilities, state: runtime.phase(), session: sessionView(runtime.status()), you };
    });

    // Input frames: many a second, so no ack is required; a refusal without one is told
    // as `input:rejected`, at most once a second, and logged the same way.
    const inputBucket = new TokenBucket(options.inputFramesPerSecond, options.inputFramesPerSecond * 2);
    let lastLog = 0;
    let lastNotice = 0;
    socket.on('input:frame', ((...args: unknown[]) => {
      const { ack, payload } = splitAck(args);
      const [meta, data] = payload;
      let result: Result;
      try {
        const role = roleRefusal(socket.data.principal, 'play');
        if (role) result = role;
        else if (!inputBucket.take()) result = fail('rate_limited', `more than ${options.inputFramesPerSecond} input frames/s`);
        else if (payload.length > 2) result = fail('bad_request', extraArgumentsMessage('input:frame', 2, payload.length));
        else if (!isPlainObject(meta)) result = fail('bad_request', 'input:frame needs (meta { track, width, height, format }, bytes)');
        else result = gateRefusal() ?? runtime.publish(meta.track, { data: toBytes(data), width: meta.width, height: meta.height, format: meta.format }, { owner: viewerIdentity(socket) });
      } catch (err) {
        clog.error({ err }, 'input handler threw');
        result = fail('internal');
      }
      if (ack) {
        try {
          ack(result);
        } catch (err) {
          clog.warn({ err, event: 'input:frame' }, 'acknowledgement failed');
        }
      }
      if (!result.ok) {
        metrics.commandError(result.error.code);
        const now = Date.now();
        if (now - lastLog > 1000) {
          lastLog = now;
          clog.info({ code: result.error.code }, 'input frame refused');
        }
        if (!ack && now - lastNotice > 1000) {
          lastNotice = now;
          const track = isPlainObject(meta) && typeof meta.track === 'string' ? meta.track.slice(0, 64) : '';
          socket.emit('input:rejected', { track, error: result.error });
        }
      }
    }) as never);

    socket.on('disconnect', (reason) => {
      stream.detach(socket.id, false);
      const grant = control.current();
      if (grant && socket.data.ownerId === grant.ownerId && socketsOf(grant.ownerId).every((s) => s.id === socket.id)) {
        clog.info({ reason, sessionId: grant.sessionId }, 'session owner disconnected; orphan timeout running');
        runtime.ownerPresence(grant.sessionId, false);
        tellSession();
      }
    });
  });

  return {
    stream,
    control,
    media,
    detach: () => {
      subscriptions.forEach((off) => off());
      stream.close();
      media.close();
    },
  };
}
