/**
 * Plain HTTP on the same server as Socket.IO: health, readiness, metrics, the command schema,
 * the demo page and the chart page (`/chart`, its stream `/chart/events`). Socket.IO handles its own path (/socket.io/) before this runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Runtime } from '../../runtime/runtime.ts';
import { isServing } from '../../machines/phase.ts';
import type { Metrics } from './metrics.ts';
import { pageAsset } from './assets.ts';
import type { EventStream } from './events-sse.ts';
import type { ChartStream } from './chart-sse.ts';
import type { ChartPage } from './chart-page.ts';
import { Access, authorizeRequest } from '../../auth/access.ts';
import { WhepEndpoint } from '../webrtc/whep.ts';
import { listRecordings } from '../../media/video-recorder.ts';
import { json } from './json-reply.ts';

/** The chart page (drawn once) and its live stream. */
export interface ChartHttp {
  readonly page: ChartPage;
  readonly stream: ChartStream;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export function health(runtime: Runtime) {
  const s = runtime.status();
  const status = s.phase === 'failed' ? 'failed' : isServing(s.phase) ? 'ok' : s.phase === 'shutdown' || s.phase === 'closing' ? 'stopping' : 'starting';
  return {
    status,
    state: s.phase,
    model: s.model,
    // No ids or owners: a health probe must not reveal anything about a user's session.
    session: s.session ? { active: true, frames: s.session.frames, dropped: s.session.dropped, ownerAway: s.session.ownerAway } : null,
    lastEnd: s.lastEnd ? { reason: s.lastEnd.reason } : null,
    loadError: s.loadError,
    workerStarts: s.workerStarts,
    sessionsStarted: s.sessionsStarted,
  };
}

/** `/metrics`: open, except with access tokens on, where it takes an operator token (or use `metricsPort`). */
function serveMetrics(metrics: Metrics, access: Access, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const allowed = access.mode === 'tokens' ? authorizeRequest(access, req, res, 'observe', { log }).then((p) => p !== null) : Promise.resolve(true);
  return allowed.then(async (ok) => {
    if (ok) send(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
  });
}

/** The listener of `metricsPort`: `/metrics` alone, without credentials (keep it on a private address). */
export function createMetricsHandler(metrics: Metrics, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return json(res, 404, { error: { code: 'bad_request', message: 'only /metrics here' } });
    serveMetrics(metrics, new Access(), req, res, log).catch((err: unknown) => {
      log.error({ err }, 'metrics listener failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'internal', message: 'internal error' } });
    });
  };
}

/** Endpoints that exist only with their feature on. */
export interface OptionalHttp {
  /** `POST /whep`, `DELETE /whep/<id>` (src/transport/webrtc/whep.ts). */
  readonly whep?: WhepEndpoint;
  /** `GET /recordings`: the folder of `--record-video`. */
  readonly recordingsDir?: string;
}

/** `GET /recordings`: the recordings (name, bytes, modified), oldest first, for the `observe` right. */
async function serveRecordings(dir: string, access: Access, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  if (!(await authorizeRequest(access, req, res, 'observe', { log }))) return;
  json(res, 200, { recordings: await listRecordings(dir) });
}

export function createHttpHandler(runtime: Runtime, metrics: Metrics, log: Logger, events?: EventStream, chart?: ChartHttp, access: Access = new Access(), optional: OptionalHttp = {}) {
  const { whep, recordingsDir } = optional;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (whep && WhepEndpoint.handles(path)) return done(whep.handle(req, res, path));
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: { code: 'bad_request', message: 'only GET' } });
    function done(p: Promise<void>): void {
      p.catch((err: unknown) => {
        log.error({ err, path }, 'http handler failed');
        if (!res.headersSent) json(res, 500, { error: { code: 'internal', message: 'internal error' } });
      });
    }
    if (path === '/events' && events) return events.handle(req, res);
    if (path === '/favicon.ico') return void res.writeHead(204).end(); // browsers ask; the pages have none
    if (path === '/chart/events' && chart) return chart.stream.handle(req, res);
    if (path === '/chart' && chart)
      return done(
        chart.page.html().then((page) => {
          res.writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
          });
          res.end(req.method === 'HEAD' ? undefined : page);
        }),
      );
    switch (path) {
      case '/health':
        return json(res, 200, health(runtime));
      case '/ready': {
        const phase = runtime.phase();
        return json(res, isServing(phase) ? 200 : 503, { ready: isServing(phase), state: phase });
      }
      case '/metrics':
        return done(serveMetrics(metrics, access, req, res, log));
      case '/schema':
        return json(res, 200, runtime.capabilities);
      case '/recordings':
        if (recordingsDir !== undefined) return done(serveRecordings(recordingsDir, access, req, res, log));
        return json(res, 404, { error: { code: 'bad_request', message: 'recordings are off (--record-video DIR)' } });
      default:
        return done(
          pageAsset(path).then((asset) => (asset ? send(res, 200, asset.type, asset.body) : json(res, 404, { error: { code: 'bad_request', message: `no route ${path}` } }))),
        );
    }
  };
}
