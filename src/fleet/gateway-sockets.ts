/**
 * The gateway's Socket.IO side: the server on the gateway's HTTP server, the handshake (the
 * nodes' admission: the same tokens, the same codes), and each connection's two requests, each
 * checked for role and rate before the ride desk sees it.
 */
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { Server } from 'socket.io';
import { Access, roleRefusal } from '../auth/access.ts';
import { fail, type Result } from '../errors.ts';
import { admissionMiddleware } from '../transport/socket/admission.ts';
import { ConnectionSlots } from '../transport/socket/connection-slots.ts';
import { originCheck } from '../transport/socket/handshake.ts';
import { TokenBucket } from '../transport/socket/rate-limit.ts';
import { extraArgumentsMessage, splitAck } from '../transport/socket/request-args.ts';
import { SubjectLimits } from '../transport/socket/subject-limits.ts';
import { messageOf } from './deadline.ts';
import { GATEWAY_CLIENT_EVENTS, type GatewayClientToServer } from './events.ts';
import type { GatewaySettings } from './options.ts';
import type { RideDesk } from './ride-desk.ts';
import type { GatewayIo, GatewaySocket, Rides } from './rides.ts';

export interface GatewaySocketDeps {
  readonly settings: GatewaySettings;
  readonly desk: RideDesk;
  readonly rides: Rides;
  readonly log: Logger;
}

/** The gateway's Socket.IO server, serving ride requests on `http`. */
export function createGatewayIo(http: HttpServer, d: GatewaySocketDeps): GatewayIo {
  const { settings: s, log } = d;
  const io: GatewayIo = new Server(http, {
    // Polling first and then upgraded (socket.io-client's and python-socketio's default), or
    // websocket at once (FleetClient): a waiting client costs one idle connection either way.
    transports: ['polling', 'websocket'],
    perMessageDeflate: false,
    httpCompression: false,
    serveClient: false,
    maxHttpBufferSize: 16 * 1024, // requests are a few hundred bytes
    cors: s.corsOrigins.length > 0 ? { origin: [...s.corsOrigins] } : undefined,
    allowRequest: originCheck(s.corsOrigins, log),
  });
  const slots = new ConnectionSlots(s.maxConnections);
  const subjects = new SubjectLimits({ maxConnections: s.maxConnectionsPerSub, requestsPerSecond: s.requestsPerSecondPerSub, requestBurst: s.requestsPerSecondPerSub * 2 });
  // The nodes' check (src/transport/socket/admission.ts): the same tokens, the same codes.
  const access = new Access({ ...(s.authToken ? { authToken: s.authToken } : {}), ...(s.tokens ? { verifier: s.tokens } : {}) });
  io.use(admissionMiddleware({ access, slots, subjects, log }));
  io.on('connection', (socket: GatewaySocket) => serveConnection(socket, subjects, d));
  return io;
}

function serveConnection(socket: GatewaySocket, subjects: SubjectLimits, d: GatewaySocketDeps): void {
  const { settings: s, log, rides, desk } = d;
  socket.data.jobId = null;
  const bucket = new TokenBucket(s.requestsPerSecond, s.requestsPerSecond * 2);
  socket.onAny((event: string) => {
    if (!(GATEWAY_CLIENT_EVENTS as readonly string[]).includes(event)) log.debug({ event: String(event).slice(0, 64) }, 'gateway: unknown event ignored');
  });
  /** Refused before the handler runs: a role that may not ride, or a rate over its limit. */
  const refusal = (): Result | null => {
    // Riding is playing: a spectator or operator token may connect, not queue.
    const principal = socket.data.principal;
    const role = roleRefusal(principal, 'play');
    if (role) return role;
    if (principal.sub !== null && !subjects.take(principal.sub)) return fail('rate_limited', `more than ${s.requestsPerSecondPerSub} requests/s for this user`);
    if (!bucket.take()) return fail('rate_limited', `more than ${s.requestsPerSecond} requests/s`);
    return null;
  };
  handle(socket, 'ride:request', (req) => desk.request(socket, req), refusal, log);
  handle(socket, 'ride:cancel', () => desk.cancel(socket), refusal, log);
  socket.on('disconnect', () => {
    const rider = socket.data.jobId ? rides.get(socket.data.jobId) : undefined;
    if (!rider || rider.socket !== socket) return;
    rider.socket = null;
    rider.actor.send({ type: 'client.left' });
  });
}

/** Answer `event` by `fn`'s Result, through the ack: never thrown, refusals logged. */
function handle<T extends object>(socket: GatewaySocket, event: keyof GatewayClientToServer, fn: (req: unknown) => Promise<Result<T>>, refusal: () => Result | null, log: Logger): void {
  socket.on(event, ((...args: unknown[]) => {
    const { ack, payload } = splitAck(args);
    if (!ack) return;
    const reply = (r: Result<T> | Result): void => {
      if (!r.ok) log.info({ event, code: r.error.code }, 'gateway: request refused');
      try {
        ack(r as Result);
      } catch (err) {
        log.warn({ err: messageOf(err) }, 'gateway: acknowledgement failed');
      }
    };
    const refused = refusal();
    if (refused) return reply(refused);
    if (payload.length > 1) return reply(fail('bad_request', extraArgumentsMessage(event, 1, payload.length)));
    fn(payload[0]).then(reply, (err: unknown) => {
      log.error({ err, event }, 'gateway: request handler threw');
      reply(fail('internal'));
    });
  }) as never);
}
