/**
 * `--publish janus://…`: the room's encoded stream published to a Janus VideoRoom, where any
 * number of viewers subscribe with Janus's own tools. src/media/sfu-publisher.ts runs the chart;
 * this file provides its actors: Janus's REST calls and the long poll.
 */
import { fromCallback, fromPromise } from 'xstate';
import type { Logger } from 'pino';
import { errorValue } from '../../errors.ts';
import { DEFAULT_PUBLISHER_TIMINGS, publisherMachine, publishError, type PublisherEvent, type PublisherLink, type PublisherTimings } from '../../machines/publisher.machine.ts';
import type { OutletEvents, OutletOptions } from '../outlet.ts';
import type { MediaRoom } from '../room.ts';
import { SfuPublisher, type SfuDriver } from '../sfu-publisher.ts';
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
async function watchSession(api: JanusApi, link: Publication, send: (e: PublisherEvent) => void, signal: AbortSignal): Promise<void> {
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

/** Janus's actors for the publisher chart: the REST calls of a VideoRoom publisher. */
function janusDriver(options: PublisherOptions): SfuDriver<Publication> {
  const api = new JanusApi(options.target.endpoint, options.api);
  return {
    name: 'Janus',
    label: options.target.label,
    describe: (p) => ({ session: p.session, feed: p.feed }),
    machine: (events: OutletEvents) =>
      publisherMachine.provide({
        actors: {
          connect: fromPromise(({ signal }) => publish(api, { room: options.target.room, display: options.display, outlet: options.outlet, events, signal })),
          watch: fromCallback<PublisherEvent, { link: PublisherLink }>(({ input, sendBack }) => {
            const stop = new AbortController();
            void watchSession(api, input.link as Publication, sendBack, stop.signal);
            return () => stop.abort();
          }),
          keepalive: fromPromise(({ input, signal }) => api.keepalive((input.link as Publication).session, signal)),
          hangup: fromPromise(async ({ input, signal }) => {
            const p = input.link as Publication;
            p.close();
            await api.destroy(p.session, p.handle, signal);
          }),
        },
        actions: {
          releaseLink: (_, params) => {
            if (!params.link) return;
            const p = params.link as Publication;
            p.close();
            void api.destroy(p.session, p.handle).catch(() => undefined);
          },
        },
      }),
  };
}

export class JanusPublisher extends SfuPublisher<Publication> {
  constructor(room: MediaRoom, options: PublisherOptions, log: Logger) {
    super(room, janusDriver(options), options.timings, log);
  }

  /** The current publication (its feed id is what subscribers ask Janus for), if publishing. */
  get publication(): Publication | null {
    return this.link;
  }
}
