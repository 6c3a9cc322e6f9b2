/**
 * `--publish janus://…`: the room's encoded stream published to a Janus VideoRoom, where any
 * number of viewers subscribe with Janus's own tools. The chart (src/machines/publisher.machine.ts)
 * decides when to connect, keep alive, retry and stop; this file provides its actors (Janus's
 * REST calls, the long poll) and hands the publication each frame the room has encoded: no second
 * encode, one more outlet.
 */
import { createActor, fromCallback, fromPromise, toPromise, type Actor } from 'xstate';
import type { Logger } from 'pino';
import { errorValue } from '../../errors.ts';
import { DEFAULT_PUBLISHER_TIMINGS, publisherMachine, publishError, type PublisherEvent, type PublisherLink, type PublisherTimings } from '../../machines/publisher.machine.ts';
import type { LiveChart } from '../../machines/chart-graph.ts';
import type { OutletOptions } from '../outlet.ts';
import type { MediaRoom, RoomFrame } from '../room.ts';
import { DEFAULT_JANUS_API, JanusApi, type JanusApiOptions, type JanusMessage } from './api.ts';
import { publish, Publication } from './publication.ts';
import type { JanusTarget } from './target.ts';

export interface PublisherOptions {
  readonly target: JanusTarget;
  /** The publisher's display name in the room. */
  readonly display: string;
  readonly outlet: OutletOptions;
  readonly timings: PublisherTimings;
  readonly api: JanusApiOptions;
}

export const publisherDefaults = (target: JanusTarget, outlet: OutletOptions): PublisherOptions => ({ target, display: target.display, outlet, timings: DEFAULT_PUBLISHER_TIMINGS, api: DEFAULT_JANUS_API });

/** What ends a publication in Janus's events: our publisher hung up or detached. */
function goneReason(e: JanusMessage): string | null {
  if (e.janus === 'hangup') return `Janus hung up the publisher (${e.reason ?? 'no reason given'})`;
  if (e.janus === 'detached') return 'Janus detached the publisher';
  return null;
}

/** The session's long poll, while publishing: Janus's word that the publisher is gone becomes an event. */
async function watchSession(api: JanusApi, link: PublisherLink, send: (e: PublisherEvent) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      for (const e of await api.poll(link.session, signal)) {
        const why = goneReason(e);
        if (why) return send({ type: 'janus.gone', error: errorValue('sfu_unreachable', why) });
      }
    } catch (err) {
      if (!signal.aborted) send({ type: 'janus.gone', error: publishError(err) });
      return;
    }
  }
}

export class JanusPublisher {
  private readonly actor: Actor<typeof publisherMachine>;
  private readonly api: JanusApi;
  private lastState = '';
  private retries = 0;

  constructor(
    private readonly room: MediaRoom,
    private readonly options: PublisherOptions,
    private readonly log: Logger,
  ) {
    this.api = new JanusApi(options.target.endpoint, options.api);
    this.actor = createActor(this.machine(), { input: { timings: options.timings } });
    this.actor.subscribe({ next: () => this.logState(), error: (err) => this.log.error({ err }, 'publisher chart failed') });
    this.actor.start();
  }

  private machine(): typeof publisherMachine {
    const { api, room, options } = this;
    const events = {
      opened: () => undefined, // the room gives a waiting outlet a keyframe on its next frame
      keyframeRequest: () => room.requestKeyframe(),
      // 'closed' is also what our own close reports; only a failure is news.
      state: (state: string) => state === 'failed' && this.actor.send({ type: 'media.failed' }),
      closed: () => undefined,
    };
    return publisherMachine.provide({
      actors: {
        connect: fromPromise(({ signal }) => publish(api, { room: options.target.room, display: options.display, outlet: options.outlet, events, signal })),
        watch: fromCallback<PublisherEvent, { link: PublisherLink }>(({ input, sendBack }) => {
          const stop = new AbortController();
          void watchSession(api, input.link, sendBack, stop.signal);
          return () => stop.abort();
        }),
        keepalive: fromPromise(({ input, signal }) => api.keepalive(input.link.session, signal)),
        hangup: fromPromise(async ({ input, signal }) => {
          input.link.close();
          await api.destroy(input.link.session, input.link.handle, signal);
        }),
      },
      actions: {
        releaseLink: (_, params) => {
          if (!params.link) return;
          params.link.close();
          void api.destroy(params.link.session, params.link.handle).catch(() => undefined);
        },
      },
    });
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

  /** The current publication (its feed id is what subscribers ask Janus for), if publishing. */
  get publication(): Publication | null {
    const link = this.actor.getSnapshot().context.link;
    return link instanceof Publication ? link : null;
  }

  /** A frame of the session: encoded once by the room (shared with its viewers) and sent to Janus. */
  feed(frame: RoomFrame): void {
    const p = this.publication;
    if (p && p.outlet.isOpen) this.room.deliver(frame, p.outlet);
  }

  /** Leave the room, detach and destroy the Janus session (bounded by the chart's stop deadline). */
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
    const where = { sfu: this.options.target.label };
    if (state === 'publishing') this.log.info({ ...where, session: context.link?.session, feed: context.link?.feed }, 'publishing to Janus');
    else if (state === 'retrying') this.log.warn({ ...where, attempt: context.attempts, err: context.lastError }, 'Janus publication lost or refused; connecting again');
    else if (state === 'failed') this.log.error({ ...where, attempts: context.attempts, err: context.lastError }, 'Janus publication given up');
    else if (state === 'stopped') this.log.info(where, 'Janus publication ended');
  }
}
