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
import { SseReaders } from './sse-readers.ts';
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

/** The `/chart/events` stream: its readers, the last events, and the push that coalesces them. */
export class ChartStream {
  private readonly audience: SseReaders;
  private readonly recent: ChartEventEntry[] = [];
  /** Events since the last push (bounded: past CHART_EVENTS_KEPT only counted in `skipped`). */
  private fresh: ChartEventEntry[] = [];
  private skipped = 0;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly subs: { unsubscribe(): void }[] = [];
  private readonly shown: LiveChart[] = [];
  private closed = false;

  constructor(initial: readonly LiveChart[], options: { readonly access?: Access }, log: Logger) {
    this.audience = new SseReaders({ ...DEFAULT_CHART_STREAM, ...(options.access ? { access: options.access } : {}), name: 'chart' }, log);
    for (const chart of initial) this.follow(chart);
  }

  /** The charts shown, in order. */
  charts(): readonly LiveChart[] {
    return this.shown;
  }

  /** A chart that starts later than the server (the SFU publisher's, once the media room loaded). */
  add(chart: LiveChart): void {
    if (this.closed) return; // the server closed before the chart started
    this.follow(chart);
    this.changed();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.audience.accept(req, res, () => `event: hello\nid: ${this.nextId++}\ndata: ${JSON.stringify(this.view())}\n\n`);
  }

  /** The states and last events as a page gets them in `hello`. */
  view(): ChartView {
    return { charts: this.states(), events: [...this.recent] };
  }

  readers(): number {
    return this.audience.size();
  }

  /** End every stream and stop watching the charts. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const s of this.subs) s.unsubscribe();
    this.audience.close();
  }

  private follow(c: LiveChart): void {
    this.shown.push(c);
    this.subs.push(
      // Only events the chart itself receives, not those of its children (the inference actor's).
      c.actor.system.inspect((e) => {
        if (e.type === '@xstate.event' && e.actorRef === (c.actor as unknown)) this.received({ t: Date.now(), chart: c.machine.id, type: e.event.type });
      }),
      c.actor.subscribe({ next: () => this.changed(), error: () => this.changed() }),
    );
  }

  private states(): Record<string, readonly string[]> {
    return Object.fromEntries(this.shown.map((c) => [c.machine.id, activeStateIds(c.machine.id, c.actor.getSnapshot().value)]));
  }

  private received(entry: ChartEventEntry): void {
    this.recent.push(entry);
    if (this.recent.length > CHART_EVENTS_KEPT) this.recent.shift();
    if (this.audience.size() > 0) {
      if (this.fresh.length < CHART_EVENTS_KEPT) this.fresh.push(entry);
      else this.skipped++;
    }
    this.changed();
  }

  private changed(): void {
    if (this.timer || this.audience.size() === 0) return;
    this.timer = setTimeout(() => this.push(), CHART_PUSH_MS);
    this.timer.unref();
  }

  private push(): void {
    this.timer = null;
    const data = { t: Date.now(), charts: this.states(), events: this.fresh, skipped: this.skipped };
    this.fresh = [];
    this.skipped = 0;
    this.audience.broadcast(`event: chart\nid: ${this.nextId++}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
