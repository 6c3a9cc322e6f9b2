/**
 * The fleet page's live viewers (`/fleet/events`): each is an open server-sent event stream,
 * sent a fresh view of the fleet whenever something changes and every PAGE_REFRESH_MS besides.
 */
import type { Logger } from 'pino';
import { messageOf } from './deadline.ts';
import type { FleetView } from './page.ts';

/** What the feed needs of a viewer's response (an http.ServerResponse) and of its request (the close). */
type Viewer = { write(data: string): unknown; end(): unknown };
type Closing = { on(event: 'close', listener: () => void): unknown };

/** Live viewers of the fleet page at once; how often the page is refreshed when nothing happens. */
export const MAX_PAGE_VIEWERS = 32;
export const PAGE_REFRESH_MS = 500;

/** The page's open event streams, and one push of a fresh view to them at a time. */
export class PageFeed {
  private readonly viewers = new Set<Viewer>();
  /** A view is being built; a change meanwhile asks for one more after it (coalesced). */
  private pushing = false;
  private pushAgain = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly view: () => Promise<FleetView>,
    private readonly log: Pick<Logger, 'warn'>,
  ) {
    this.timer = setInterval(() => this.changed(), PAGE_REFRESH_MS);
    this.timer.unref();
  }

  get full(): boolean {
    return this.viewers.size >= MAX_PAGE_VIEWERS;
  }

  /** Follow one more viewer until its request closes, and send it a view at once. */
  add(req: Closing, res: Viewer): void {
    this.viewers.add(res);
    req.on('close', () => this.viewers.delete(res));
    this.changed();
  }

  /** Something changed: send the viewers a fresh view (coalesced: one build at a time). */
  changed(): void {
    if (this.viewers.size === 0) return;
    if (this.pushing) {
      this.pushAgain = true;
      return;
    }
    this.pushing = true;
    this.view()
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

  /** End the streams (an open one would hold the HTTP server open) and the refresh timer. */
  close(): void {
    clearInterval(this.timer);
    for (const res of this.viewers) res.end();
    this.viewers.clear();
  }
}
