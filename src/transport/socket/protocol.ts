/**
 * The Socket.IO protocol: client events become runtime requests (hence chart events), and the
 * chart's answer goes back in the acknowledgement. The transport adds no lifecycle rule: it
 * validates, maps sockets to owners and viewers, and sends (STYLE.md, rule 4). One socket's
 * requests are handled by its `Connection` (src/transport/socket/connection.ts).
 */
import type { Server } from 'socket.io';
import type { Logger } from 'pino';
import type { Result } from '../../errors.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { Metrics } from '../http/metrics.ts';
import type { TransportOptions } from '../options.ts';
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from './events.ts';
import { sessionView } from './session-view.ts';
import { SessionControl } from './control.ts';
import { admissionMiddleware } from './admission.ts';
import { SubjectLimits } from './subject-limits.ts';
import type { Access } from '../../auth/access.ts';
import { StreamRouter } from './stream.ts';
import { createMedia, type Media } from '../webrtc/signalling.ts';
import { DEFAULT_WEBRTC } from '../webrtc/options.ts';
import { ConnectionSlots } from './connection-slots.ts';
import { Connection, viewerIdentity, type ConnectionContext, type FramehostSocket } from './connection.ts';

export type FramehostServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface ProtocolDeps {
  readonly runtime: Runtime;
  readonly options: TransportOptions;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The credentials check (src/auth/access.ts), shared with the HTTP endpoints. */
  readonly access: Access;
}

export function attachProtocol(io: FramehostServer, deps: ProtocolDeps): { stream: StreamRouter; control: SessionControl; media: Media; detach(): Promise<void> } {
  const { runtime, options, log, metrics, access } = deps;
  const control = new SessionControl();
  /** The gate (fleet nodes: the lease), asked synchronously at every frame, message, command and input frame. */
  const gate = options.gate;
  const mayLeave = (): boolean => gate === undefined || gate().ok;
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
  const tellSession = (): void => {
    const view = sessionView(runtime.status());
    if (view) io.emit('session:update', view);
  };
  const socketsOf = (ownerId: string | null): FramehostSocket[] =>
    ownerId ? [...io.sockets.sockets.values()].filter((s) => s.data.ownerId === ownerId) : [];

  /** Runtime subscriptions, undone when the server closes (the runtime outlives it). */
  const subscriptions = relayRuntime(io, { runtime, stream, control, mayLeave, tellSession, socketsOf });

  // Admitted sockets, counted by us (src/transport/socket/connection-slots.ts); the gauge follows the count.
  const slots = new ConnectionSlots(options.maxConnections, (n) => metrics.connections(n));
  const subjects = new SubjectLimits({ maxConnections: options.maxConnectionsPerSub, requestsPerSecond: options.requestsPerSecondPerSub, requestBurst: options.requestBurstPerSub });

  // Handshake (src/transport/socket/admission.ts): credentials, connections per user, the connection
  // limit. Errors reach the client's `connect_error` with `.data = { code, message }`.
  io.use(admissionMiddleware({ access, slots, subjects, log }));

  const context: ConnectionContext = { runtime, options, log, metrics, control, stream, subjects, gateRefusal, tellSession, socketsOf };
  io.on('connection', (socket: FramehostSocket) => {
    const connection = new Connection(socket, context);
    media.attach(socket, () => viewerIdentity(socket));
    connection.listen();
  });

  return {
    stream,
    control,
    media,
    detach: () => {
      subscriptions.forEach((off) => off());
      stream.close();
      return media.close();
    },
  };
}

interface Relay {
  readonly runtime: Runtime;
  readonly stream: StreamRouter;
  readonly control: SessionControl;
  readonly mayLeave: () => boolean;
  readonly tellSession: () => void;
  readonly socketsOf: (ownerId: string | null) => FramehostSocket[];
}

/** The runtime's events, told to the sockets they concern; returns the unsubscribers. */
function relayRuntime(io: FramehostServer, { runtime, stream, control, mayLeave, tellSession, socketsOf }: Relay): (() => void)[] {
  return [
    runtime.on('frame', (frame) => stream.frame(frame)),
    runtime.on('message', (m) => {
      if (mayLeave()) stream.viewers().forEach((v) => v.socket.emit('message', m));
    }),
    // Only the owner sends commands, so a handler's failure goes to the owner's connections.
    runtime.on('command.failed', (e) => {
      for (const s of socketsOf(control.ownerOf(e.sessionId))) s.emit('command:failed', { requestId: e.requestId, error: e.error });
    }),
    runtime.on('phase', ({ phase }) => io.emit('state', { state: phase })),
    // Every connection learns of a change of owner presence or command state (the controls follow).
    runtime.on('controls', tellSession),
    runtime.on('session.began', tellSession), // every page learns the session's id and its fresh state
    runtime.on('session.finished', (e) => {
      const recipients = new Set(socketsOf(control.ownerOf(e.sessionId)));
      for (const v of stream.viewers()) recipients.add(v.socket);
      for (const s of recipients) s.emit('session:ended', { sessionId: e.sessionId, reason: e.reason, ...(e.error ? { error: e.error } : {}) });
      for (const s of socketsOf(control.ownerOf(e.sessionId))) s.data.ownerId = null;
      control.revoke(e.sessionId);
    }),
  ];
}
