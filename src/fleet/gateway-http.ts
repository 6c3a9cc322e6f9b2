/**
 * The gateway's HTTP side: `/health`, `/ready`, `/metrics`, and the live fleet page (`/` and its
 * server-sent event feed `/fleet/events`). Socket.IO shares the server; this file answers the
 * rest. Every answer is a value the gateway computes; nothing here touches Redis itself.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorValue } from '../errors.ts';
import { MAX_PAGE_VIEWERS, PageFeed } from './page-feed.ts';
import { chartGraph } from '../machines/chart-graph.ts';
import { nodeMachine } from '../machines/node.machine.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import { rideMachine } from '../machines/ride.machine.ts';
import { drawChart } from '../charts/drawing.ts';
import { chartsPageHtml, FLEET_PAGE_HTML, type FleetView } from './page.ts';

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

/** The charts page, drawn once on the first request: ELK's layout of the three charts takes a few tens of ms. */
class ChartsPage {
  private page: Promise<string> | null = null;

  html(): Promise<string> {
    this.page ??= Promise.all([drawChart(chartGraph(runtimeMachine)), drawChart(chartGraph(nodeMachine)), drawChart(chartGraph(rideMachine))]).then(([rt, n, r]) => chartsPageHtml(rt, n, r));
    return this.page;
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

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(JSON.stringify(value));
}

export function createGatewayHttp(deps: GatewayHttpDeps): GatewayHttp {
  const feed = new PageFeed(deps.fleetView, deps.log);
  const charts = new ChartsPage();
  const server = createServer((req, res) => route(req, res, deps, feed, charts));
  return { server, changed: () => feed.changed(), close: () => feed.close() };
}

function route(req: IncomingMessage, res: ServerResponse, deps: GatewayHttpDeps, feed: PageFeed, charts: ChartsPage): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: errorValue('bad_request', 'only GET') });
  const head = req.method === 'HEAD';
  const done = (p: Promise<void>): void => {
    p.catch((err: unknown) => {
      deps.log.error({ err, path }, 'gateway: http handler failed');
      if (!res.headersSent) json(res, 500, { error: errorValue('internal') });
    });
  };
  if (path === '/') return html(res, head ? undefined : FLEET_PAGE_HTML);
  if (path === '/charts') return done(charts.html().then((page) => html(res, head ? undefined : page)));
  if (path === '/favicon.ico') return void res.writeHead(204).end(); // browsers ask; the page has none
  if (path === '/fleet/events') {
    if (feed.full) return json(res, 503, { error: errorValue('too_many_connections', `${MAX_PAGE_VIEWERS} fleet page viewers`) });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    return feed.add(req, res);
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
