/**
 * One publication of the room's stream in a Janus VideoRoom: a Janus session, a handle on the
 * VideoRoom plugin, the room (made if it does not exist), and a publisher that joined with our
 * offer and got Janus's answer. What it costs framehost: one more outlet of the room (packet
 * copies of frames already encoded), however many subscribe in Janus.
 */
import { FramehostError } from '../../errors.ts';
import type { Outlet, OutletEvents, OutletOptions } from '../outlet.ts';
import { JanusApi, videoRoomError, type JanusMessage } from './api.ts';
import { OfferingPeer } from '../sfu-offer.ts';

export const VIDEOROOM = 'janus.plugin.videoroom';

/** VideoRoom error codes framehost handles (janus_videoroom.c): the room exists already (a race with another publisher's create). */
const ROOM_EXISTS = 427;

export interface PublishRequest {
  readonly room: number;
  /** The publisher's display name in the room (what subscribers' lists show). */
  readonly display: string;
  readonly outlet: OutletOptions;
  readonly events: OutletEvents;
  readonly signal: AbortSignal;
}

/** A live publication: the ids Janus gave it and the outlet the room feeds. */
export class Publication {
  constructor(
    readonly session: number,
    readonly handle: number,
    /** The publisher's id in the room (what a subscriber asks for as its feed). */
    readonly feed: number,
    readonly outlet: Outlet,
  ) {}

  /** Our side only (the peer); the Janus side is ended by `JanusApi.destroy`. */
  close(): void {
    this.outlet.close();
  }
}

function refused(what: string, reply: JanusMessage): FramehostError | null {
  const e = videoRoomError(reply);
  return e ? new FramehostError('sfu_refused', `VideoRoom ${what}: ${e.code} ${e.reason}`) : null;
}

async function ensureRoom(api: JanusApi, session: number, handle: number, room: number, signal: AbortSignal): Promise<void> {
  const exists = await api.message(session, handle, { request: 'exists', room }, { signal });
  const bad = refused('exists', exists);
  if (bad) throw bad;
  if (exists.plugindata?.data.exists === true) return;
  // Not permanent: the room lives as long as this Janus runs (an operator's own rooms come from its config).
  const made = await api.message(session, handle, { request: 'create', room, description: 'framehost', videocodec: 'vp8', publishers: 4, permanent: false }, { signal });
  const e = videoRoomError(made);
  if (e && e.code !== ROOM_EXISTS) throw new FramehostError('sfu_refused', `VideoRoom create: ${e.code} ${e.reason}`);
}

/** Session, handle, room, offer, join as publisher, answer: a Publication, or a coded error (and nothing left open). */
export async function publish(api: JanusApi, request: PublishRequest): Promise<Publication> {
  const { room, signal } = request;
  const session = await api.createSession(signal);
  let peer: OfferingPeer | null = null;
  try {
    const handle = await api.attach(session, VIDEOROOM, signal);
    await ensureRoom(api, session, handle, room, signal);
    peer = await OfferingPeer.create(request.outlet);
    const joined = await api.message(session, handle, { request: 'joinandconfigure', ptype: 'publisher', room, display: request.display }, { jsep: { type: 'offer', sdp: peer.sdp }, signal });
    const bad = refused('joinandconfigure', joined);
    if (bad) throw bad;
    const feed = joined.plugindata?.data.id;
    if (joined.jsep?.type !== 'answer' || typeof feed !== 'number') throw new FramehostError('sfu_refused', `VideoRoom joinandconfigure: no answer (${joined.janus})`);
    const outlet = peer.accept(joined.jsep.sdp, request.events);
    // Stopped while the answer was on its way: nobody would take (or close) this publication.
    if (signal.aborted) throw new FramehostError('sfu_unreachable', 'the publisher stopped while Janus answered');
    return new Publication(session, handle, feed, outlet);
  } catch (err) {
    peer?.close();
    // Best effort: a Janus that is gone cannot be told; its session then times out on its own.
    await api.destroy(session, null).catch(() => undefined);
    throw err;
  }
}
