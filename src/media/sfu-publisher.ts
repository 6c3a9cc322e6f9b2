/**
 * `--publish`: the room's encoded stream published to an SFU, where any number of viewers
 * subscribe with the SFU's own tools. The chart (src/machines/publisher.machine.ts) decides when
 * to connect, keep alive, retry and stop; a driver (Janus's REST API in src/media/janus/, WHIP in
 * src/media/whip/) provides its actors, and this class hands the publication each frame the room
 * has encoded: no second encode, one more outlet.
 */
import { createActor, toPromise, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { publisherMachine, type PublisherLink, type PublisherTimings } from '../machines/publisher.machine.ts';
import type { LiveChart } from '../machines/chart-graph.ts';
import type { Outlet, OutletEvents } from './outlet.ts';
import type { MediaRoom, RoomFrame } from './room.ts';

/** A live publication: what the chart keeps, with the outlet the room feeds. */
export interface SfuLink extends PublisherLink {
  readonly outlet: Outlet;
}

/** What one kind of SFU brings: the chart's actors and effects, and words for the log. */
export interface SfuDriver<L extends SfuLink> {
  /** The SFU's name in log lines, e.g. `Janus`, `WHIP`. */
  readonly name: string;
  /** The target as the operator wrote it, without credentials. */
  readonly label: string;
  /** The chart with this SFU's actors; the peer's events (a keyframe request, a failure) go to `events`. */
  machine(events: OutletEvents): typeof publisherMachine;
  /** What the log says of a publication once it publishes (its ids at the SFU). */
  describe(link: L): Record<string, unknown>;
}

export class SfuPublisher<L extends SfuLink> {
  private readonly actor: Actor<typeof publisherMachine>;
  private lastState = '';
  private retries = 0;

  constructor(
    private readonly room: MediaRoom,
    private readonly driver: SfuDriver<L>,
    timings: PublisherTimings,
    private readonly log: Logger,
  ) {
    const events: OutletEvents = {
      opened: () => undefined, // the room gives a waiting outlet a keyframe on its next frame
      keyframeRequest: () => room.requestKeyframe(),
      // 'closed' is also what our own close reports; only a failure is news.
      state: (state: string) => state === 'failed' && this.actor.send({ type: 'media.failed' }),
      closed: () => undefined,
    };
    this.actor = createActor(driver.machine(events), { input: { timings } });
    this.actor.subscribe({ next: () => this.logState(), error: (err) => this.log.error({ err }, 'publisher chart failed') });
    this.actor.start();
  }

  /** The chart's state, e.g. `publishing`, `retrying` (tests and logs). */
  get state(): string {
    const v = this.actor.getSnapshot().value;
    return typeof v === 'string' ? v : Object.keys(v)[0]!;
  }

  /** Times the publication was lost or refused and the publisher set out to connect again (entries to `retrying`). */
  get reconnects(): number {
    return this.retries;
  }

  /** The chart and its running actor, for the /chart page. */
  get chart(): LiveChart {
    return { machine: publisherMachine, actor: this.actor };
  }

  /** The current publication, if publishing. */
  get link(): L | null {
    // The chart keeps what this driver's connect actor made: an L.
    return this.actor.getSnapshot().context.link as L | null;
  }

  /** A frame of the session: encoded once by the room (shared with its viewers) and sent to the SFU. */
  feed(frame: RoomFrame): void {
    const link = this.link;
    if (link && link.outlet.isOpen) this.room.deliver(frame, link.outlet);
  }

  /** End the publication at the SFU (bounded by the chart's stop deadline). */
  async stop(): Promise<void> {
    if (this.actor.getSnapshot().status !== 'active') return; // stopped already, or given up
    this.actor.send({ type: 'publisher.stop' });
    await toPromise(this.actor).catch(() => undefined);
  }

  private logState(): void {
    const state = this.state;
    if (state === this.lastState) return;
    this.lastState = state;
    if (state === 'retrying') this.retries++;
    const { context } = this.actor.getSnapshot();
    const { name } = this.driver;
    const where = { sfu: this.driver.label };
    const link = this.link;
    if (state === 'publishing') this.log.info({ ...where, ...(link ? this.driver.describe(link) : {}) }, `publishing to ${name}`);
    else if (state === 'retrying') this.log.warn({ ...where, attempt: context.attempts, err: context.lastError }, `${name} publication lost or refused; connecting again`);
    else if (state === 'failed') this.log.error({ ...where, attempts: context.attempts, err: context.lastError }, `${name} publication given up`);
    else if (state === 'stopped') this.log.info(where, `${name} publication ended`);
  }
}
