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
  const { log } = deps;
  const viewers = new Set<ServerResponse>();
  let pushing = false;
  let pushAgain = false;
  const changed = (): void => {
    if (viewers.size === 0) return;
    if (pushing) {
      pushAgain = true;
      return;
    }
    pushing = true;
    deps
      .fleetView()
      .then((v) => {
        const data = `data: ${JSON.stringify(v)}\n\n`;
        for (const res of viewers) res.write(data);
      })
      .catch((err: unknown) => log.warn({ err: messageOf(err) }, 'gateway: building the fleet view failed'))
      .finally(() => {
        pushing = false;
        if (pushAgain) {
          pushAgain = false;
          changed();
        }
      });
  };
  const timer = setInterval(changed, PAGE_REFRESH_MS);
  timer.unref();

  // Drawn once, on the first request: ELK's layout of both charts takes a few tens of ms.
  let chartsPage: Promise<string> | null = null;
  const charts = (): Promise<string> => (chartsPage ??= Promise.all([drawChart(chartGraph(runtimeMachine)), drawChart(chartGraph(nodeMachine)), drawChart(chartGraph(rideMachine))]).then(([rt, n, r]) => chartsPageHtml(rt, n, r)));

  const html = (res: ServerResponse, body: string | undefined): void => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify(value));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: errorValue('bad_request', 'only GET') });
    const done = (p: Promise<void>): void => {
      p.catch((err: unknown) => {
        log.error({ err, path }, 'gateway: http handler failed');
        if (!res.headersSent) json(res, 500, { error: errorValue('internal') });
      });
    };
    if (path === '/') return html(res, req.method === 'HEAD' ? undefined : FLEET_PAGE_HTML);
    if (path === '/charts') return done(charts().then((page) => html(res, req.method === 'HEAD' ? undefined : page)));
    if (path === '/favicon.ico') return void res.writeHead(204).end(); // browsers ask; the page has none
    if (path === '/fleet/events') {
      if (viewers.size >= MAX_PAGE_VIEWERS) return json(res, 503, { error: errorValue('too_many_connections', `${MAX_PAGE_VIEWERS} fleet page viewers`) });
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      viewers.add(res);
      req.on('close', () => viewers.delete(res));
      return changed();
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
  });

  return {
    server,
    changed,
    close() {
      clearInterval(timer);
      for (const res of viewers) res.end();
      viewers.clear();
    },
  };
}
