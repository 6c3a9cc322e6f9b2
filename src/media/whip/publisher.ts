/**
 * `--publish whip+http://…`: the room's encoded stream published to a WHIP endpoint (LiveKit's
 * ingress, MediaMTX). src/media/sfu-publisher.ts runs the chart; this file provides its actors:
 * connecting is the offer POSTed and the answer applied, stopping is the DELETE. WHIP has no
 * events to watch and no keep-alive (the media's own ICE consent keeps the session), so those
 * actors are idle: a lost session shows as our peer failing (`media.failed`).
 */
import { fromPromise } from 'xstate';
import type { Logger } from 'pino';
import { FramehostError } from '../../errors.ts';
import { DEFAULT_PUBLISHER_TIMINGS, publisherMachine, type PublisherLink, type PublisherTimings } from '../../machines/publisher.machine.ts';
import type { Outlet, OutletEvents, OutletOptions } from '../outlet.ts';
import type { MediaRoom } from '../room.ts';
import { OfferingPeer } from '../sfu-offer.ts';
import { SfuPublisher, type SfuDriver } from '../sfu-publisher.ts';
import { DEFAULT_WHIP_API, WhipApi, type WhipApiOptions } from './api.ts';
import type { WhipTarget } from './target.ts';

export interface WhipPublisherOptions {
  readonly target: WhipTarget;
  readonly outlet: OutletOptions;
  readonly timings: PublisherTimings;
  readonly api: WhipApiOptions;
}

export const whipPublisherDefaults = (target: WhipTarget, outlet: OutletOptions): WhipPublisherOptions => ({ target, outlet, timings: DEFAULT_PUBLISHER_TIMINGS, api: DEFAULT_WHIP_API });

/** A live WHIP session: its resource (what DELETE ends) and the outlet the room feeds. */
export class WhipPublication {
  constructor(
    readonly resource: string,
    readonly outlet: Outlet,
  ) {}

  /** Our side only (the peer); the SFU's side is ended by `WhipApi.end`. */
  close(): void {
    this.outlet.close();
  }
}

/** Offer, POST, answer: a WhipPublication, or a coded error (and nothing left open). */
async function connect(api: WhipApi, outlet: OutletOptions, events: OutletEvents, signal: AbortSignal): Promise<WhipPublication> {
  const peer = await OfferingPeer.create(outlet);
  let resource: string | null = null;
  try {
    const answer = await api.offer(peer.sdp, signal);
    resource = answer.resource;
    const publication = new WhipPublication(resource, peer.accept(answer.sdp, events));
    // Stopped while the answer was on its way: nobody would take (or end) this publication.
    if (signal.aborted) throw new FramehostError('sfu_unreachable', 'the publisher stopped while the WHIP endpoint answered');
    return publication;
  } catch (err) {
    peer.close();
    // Best effort: an endpoint that is gone cannot be told; it drops the session when ICE fails.
    if (resource !== null) void api.end(resource).catch(() => undefined);
    throw err;
  }
}

function whipDriver(options: WhipPublisherOptions): SfuDriver<WhipPublication> {
  const api = new WhipApi(options.target, options.api);
  return {
    name: 'WHIP',
    label: options.target.label,
    describe: (p) => ({ resource: p.resource }),
    machine: (events: OutletEvents) =>
      publisherMachine.provide({
        actors: {
          connect: fromPromise(({ signal }) => connect(api, options.outlet, events, signal)),
          // The chart's keep-alive ticks on: WHIP has nothing to keep alive, so it resolves at once.
          keepalive: fromPromise<void, { link: PublisherLink }>(async () => undefined),
          hangup: fromPromise(async ({ input, signal }) => {
            const p = input.link as WhipPublication;
            p.close();
            await api.end(p.resource, signal);
          }),
        },
        actions: {
          releaseLink: (_, params) => {
            if (!params.link) return;
            const p = params.link as WhipPublication;
            p.close();
            void api.end(p.resource).catch(() => undefined);
          },
        },
      }),
  };
}

export class WhipPublisher extends SfuPublisher<WhipPublication> {
  constructor(room: MediaRoom, options: WhipPublisherOptions, log: Logger) {
    super(room, whipDriver(options), options.timings, log);
  }
}
