/**
 * The server's side of `--publish`: once the media room has loaded (node-av is optional, so the
 * room may not), a publisher (Janus's or WHIP's, by the target) is fed every frame of every
 * session. Frames before a session, or between sessions, are simply none: the publication stays
 * up and the SFU's subscribers see the next session as it starts. Imported only when `--publish`
 * is given (node-datachannel and wrtc do not share a process).
 */
import type { Logger } from 'pino';
import type { ErrorValue } from '../errors.ts';
import { JanusPublisher, publisherDefaults } from './janus/publisher.ts';
import { DEFAULT_OUTLET, type OutletOptions } from './outlet.ts';
import type { PublishTarget } from './publish-target.ts';
import type { MediaRoom, RoomFrame } from './room.ts';
import type { SfuLink, SfuPublisher } from './sfu-publisher.ts';
import { WhipPublisher, whipPublisherDefaults } from './whip/publisher.ts';

/** Where the frames come from: the runtime's `frame` event (returns the unsubscribe). */
export type FrameSource = (listener: (frame: RoomFrame) => void) => () => void;

function publisherFor(room: MediaRoom, target: PublishTarget, outlet: OutletOptions, log: Logger): SfuPublisher<SfuLink> {
  if (target.kind === 'whip') return new WhipPublisher(room, whipPublisherDefaults(target, outlet), log);
  return new JanusPublisher(room, publisherDefaults(target, outlet), log);
}

export class RoomPublishing {
  private constructor(
    readonly publisher: SfuPublisher<SfuLink>,
    private readonly off: () => void,
  ) {}

  /** The publisher, or null (logged) when the room could not load. */
  static async start(room: Promise<MediaRoom | ErrorValue>, frames: FrameSource, target: PublishTarget, outlet: Pick<OutletOptions, 'bindAddress'>, log: Logger): Promise<RoomPublishing | null> {
    const loaded = await room;
    if (!('push' in loaded)) {
      log.error({ sfu: target.label, err: loaded }, 'cannot publish: the media room did not load');
      return null;
    }
    const publisher = publisherFor(loaded, target, { ...DEFAULT_OUTLET, ...outlet }, log.child({ component: 'publish' }));
    return new RoomPublishing(publisher, frames((frame) => publisher.feed(frame)));
  }

  async stop(): Promise<void> {
    this.off();
    await this.publisher.stop();
  }
}
