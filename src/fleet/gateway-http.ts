/**
 * The gateway's HTTP side: `/health`, `/ready`, `/metrics`, and the live fleet page (`/` and its
 * server-sent event feed `/fleet/events`). Socket.IO shares the server; this file answers the
 * rest. Every answer is a value the gateway computes; nothing here touches Redis itself.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorValue } from '../errors.ts';
import { messageOf } from './deadline.ts';
import { chartGraph } from '../machines/chart-graph.ts';
import { nodeMachine } from '../machines/node.machine.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import { rideMachine } from '../machines/ride.machine.ts';
import { drawChart } from '../charts/drawing.ts';
import { chartsPageHtml, FLEET_PAGE_HTML, type FleetView } from './page.ts';
import { json } from '../transport/json-reply.ts';

/** Live viewers of the fleet page at once; how often the page is refreshed when nothing happens. */
export const MAX_PAGE_VIEWERS = 32;
export const PAGE_REFRESH_MS = 500;

export interface GatewayHttpDeps {
  readonly health: () => Promise<unknown>;
  readonly readiness: () => Promise<{ readonly ready: boolean }>;
  readonly metrics: Registry;
  readonly fleetView: () => Promise<FleetView>;
  readonly log: Logger;
}

export interface GatewayHttp {
  readonly server: HttpServer;
  /** Something changed: send the page's viewers a fresh view (coalesced). */
  changed(): void;
  /** End the event streams (an open one would hold the HTTP server open) and the refresh timer. */
  close(): void;
}

export function createGatewayHttp(deps: GatewayHttpDeps): GatewayHttp {
  const feed = new FleetPageFeed(deps.fleetView, deps.log);
  const routes = new GatewayRoutes(deps, feed);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => routes.handle(req, res));
  return { server, changed: () => feed.changed(), close: () => feed.close() };
}

/** The fleet page's live viewers, and a fresh view pushed to them on a change (coalesced) or every PAGE_REFRESH_MS. */
class FleetPageFeed {
  private readonly viewers = new Set<ServerResponse>();
  private pushing = false;
  private pushAgain = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly fleetView: () => Promise<FleetView>,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => this.changed(), PAGE_REFRESH_MS);
    this.timer.unref();
  }

  get size(): number {
    return this.viewers.size;
  }

  /** A new viewer's event stream: it gets a view at once. */
  add(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    this.viewers.add(res);
    req.on('close', () => this.viewers.delete(res));
    this.changed();
  }

  changed(): void {
    if (this.viewers.size === 0) return;
    if (this.pushing) {
      this.pushAgain = true;
      return;
    }
    this.pushing = true;
    this.fleetView()
      .then((v) => {
        const data = `data: ${JSON.stringify(v)}\n\n`;
        for (const res of this.viewers) res.write(data);
      })
      .catch((err: unknown) => this.log.warn({ err: messageOf(err) }, 'gateway: building the fleet view failed'))
      .finally(() => {
        this.pushing = false;
        if (this.pushAgain) {
          this.pushAgain = false;
          this.changed();
        }
      });
  }

  close(): void {
    clearInterval(this.timer);
    for (const res of this.viewers) res.end();
    this.viewers.clear();
  }
}

function html(res: ServerResponse, body: string | undefined): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
  });
  res.end(body);
}

/** The gateway's routes, and the charts page, drawn once on its first request. */
class GatewayRoutes {
  // ELK's layout of the three charts takes a few tens of ms: drawn on the first request, then kept.
  private chartsPage: Promise<string> | null = null;

  constructor(
    private readonly deps: GatewayHttpDeps,
    private readonly feed: FleetPageFeed,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const { deps } = this;
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: errorValue('bad_request', 'only GET') });
    const done = (p: Promise<void>): void => {
      p.catch((err: unknown) => {
        deps.log.error({ err, path }, 'gateway: http handler failed');
        if (!res.headersSent) json(res, 500, { error: errorValue('internal') });
      });
    };
    if (path === '/') return html(res, req.method === 'HEAD' ? undefined : FLEET_PAGE_HTML);
    if (path === '/charts') return done(this.charts().then((page) => html(res, req.method === 'HEAD' ? undefined : page)));
    if (path === '/favicon.ico') return void res.writeHead(204).end(); // browsers ask; the page has none
    if (path === '/fleet/events') {
      if (this.feed.size >= MAX_PAGE_VIEWERS) return json(res, 503, { error: errorValue('too_many_connections', `${MAX_PAGE_VIEWERS} fleet page viewers`) });
      return this.feed.add(req, res);
    }
    if (path === '/health') return done(deps.health().then((h) => json(res, 200, h)));
    if (path === '/ready') return done(deps.readiness().then((r) => json(res, r.ready ? 200 : 503, r)));
    if (path === '/metrics')
      return done(
        deps.metrics.metrics().then((body) => {
          res.writeHead(200, { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' });
          res.end(body);
        }),
      );
    json(res, 404, { error: errorValue('bad_request', `no route ${String(path).slice(0, 64)}`) });
  }

  private charts(): Promise<string> {
    return (this.chartsPage ??= Promise.all([drawChart(chartGraph(runtimeMachine)), drawChart(chartGraph(nodeMachine)), drawChart(chartGraph(rideMachine))]).then(([rt, n, r]) => chartsPageHtml(rt, n, r)));
  }
}
