/**
 * `GET /chart/events`: what the node's `/chart` page lights and lists, as server-sent events:
 * each live chart's active state ids (every region) and the last events the charts received
 * (their type and when; never their data, which can hold owner ids).
 *
 * Events: `hello` at connect (`{ charts: { <chart id>: [state ids] }, events: [last events] }`),
 * then `chart` (`{ t, charts, events: [since the last one], skipped }`), at most one per
 * `CHART_PUSH_MS`: a chart event is a lifecycle step or a command, never a frame (frames do not
 * enter the charts), and coalescing bounds even a client sending commands at its rate limit.
 * Bounded like `/events` (sse-readers.ts: the `observe` right, a reader limit, slow readers dropped).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { activeStateIds, type LiveChart } from '../../machines/chart-graph.ts';
import { createSseReaders } from './sse-readers.ts';
import type { Access } from '../../auth/access.ts';

/** Chart pages at once; the last events kept (and sent in one push at most); the push period. */
export const DEFAULT_CHART_STREAM = { maxClients: 8, maxBufferedBytes: 256 * 1024, keepAliveMs: 15_000 } as const;
export const CHART_EVENTS_KEPT = 20;
export const CHART_PUSH_MS = 100;

export interface ChartEventEntry {
  /** When the chart received it, ms since the epoch. */
  readonly t: number;
  /** The chart's id (`framehost`, `node`). */
  readonly chart: string;
  readonly type: string;
}

export interface ChartView {
  readonly charts: Readonly<Record<string, readonly string[]>>;
  readonly events: readonly ChartEventEntry[];
}

export interface ChartStream {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The states and last events as a page gets them in `hello`. */
  view(): ChartView;
  readers(): number;
  /** The charts shown, in order. */
  charts(): readonly LiveChart[];
  /** A chart that starts later than the server (the SFU publisher's, once the media room loaded). */
  add(chart: LiveChart): void;
  /** End every stream and stop watching the charts. */
  close(): void;
}

/** Follow one chart: each event it receives itself (not its children's: the inference actor's) and each change of state. */
function followChart(c: LiveChart, received: (entry: ChartEventEntry) => void, changed: () => void): { unsubscribe(): void }[] {
  return [
    c.actor.system.inspect((e) => {
      if (e.type !== '@xstate.event' || e.actorRef !== (c.actor as unknown)) return;
      received({ t: Date.now(), chart: c.machine.id, type: e.event.type });
    }),
    c.actor.subscribe({ next: changed, error: () => changed() }),
  ];
}

export function createChartStream(initial: readonly LiveChart[], options: { readonly access?: Access }, log: Logger): ChartStream {
  const charts = [...initial];
  const readers = createSseReaders({ ...DEFAULT_CHART_STREAM, ...(options.access ? { access: options.access } : {}), name: 'chart' }, log);
  const recent: ChartEventEntry[] = [];
  /** Events since the last push (bounded: past CHART_EVENTS_KEPT only counted). */
  let fresh: ChartEventEntry[] = [];
  let skipped = 0;
  let timer: NodeJS.Timeout | null = null;
  let nextId = 1;
  let closed = false;

  const states = (): Record<string, readonly string[]> =>
    Object.fromEntries(charts.map((c) => [c.machine.id, activeStateIds(c.machine.id, c.actor.getSnapshot().value)]));
  const view = (): ChartView => ({ charts: states(), events: [...recent] });

  const push = (): void => {
    timer = null;
    const events = fresh;
    fresh = [];
    const data = { t: Date.now(), charts: states(), events, skipped };
    skipped = 0;
    readers.broadcast(`event: chart\nid: ${nextId++}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const changed = (): void => {
    if (timer || readers.size() === 0) return;
    timer = setTimeout(push, CHART_PUSH_MS);
    timer.unref();
  };

  const received = (entry: ChartEventEntry): void => {
    recent.push(entry);
    if (recent.length > CHART_EVENTS_KEPT) recent.shift();
    if (readers.size() > 0) {
      if (fresh.length < CHART_EVENTS_KEPT) fresh.push(entry);
      else skipped++;
    }
    changed();
  };
  const watch = (c: LiveChart): { unsubscribe(): void }[] => followChart(c, received, changed);
  const subs = charts.flatMap(watch);

  return {
    handle(req, res) {
      readers.accept(req, res, () => `event: hello\nid: ${nextId++}\ndata: ${JSON.stringify(view())}\n\n`);
    },
    view,
    readers: () => readers.size(),
    charts: () => charts,
    add(chart) {
      if (closed) return; // the server closed before the chart started
      charts.push(chart);
      subs.push(...watch(chart));
      changed();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      for (const s of subs) s.unsubscribe();
      readers.close();
    },
  };
}
