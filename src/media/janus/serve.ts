/**
 * The server's side of `--publish`: once the media room has loaded (node-av is optional, so the
 * room may not), a JanusPublisher is fed every frame of every session. Frames before a session,
 * or between sessions, are simply none: the publication stays in the room and Janus's subscribers
 * see the next session as it starts. Imported only when `--publish` is given (node-datachannel
 * and wrtc do not share a process).
 */
import type { Logger } from 'pino';
import type { ErrorValue } from '../../errors.ts';
import { DEFAULT_OUTLET, type OutletOptions } from '../outlet.ts';
import type { MediaRoom, RoomFrame } from '../room.ts';
import { JanusPublisher, publisherDefaults } from './publisher.ts';
import type { JanusTarget } from './target.ts';

/** Where the frames come from: the runtime's `frame` event (returns the unsubscribe). */
export type FrameSource = (listener: (frame: RoomFrame) => void) => () => void;

export class RoomPublishing {
  private constructor(
    readonly publisher: JanusPublisher,
    private readonly off: () => void,
  ) {}

  /** The publisher, or null (logged) when the room could not load. */
  static async start(room: Promise<MediaRoom | ErrorValue>, frames: FrameSource, target: JanusTarget, outlet: Pick<OutletOptions, 'bindAddress'>, log: Logger): Promise<RoomPublishing | null> {
    const loaded = await room;
    if (!('push' in loaded)) {
      log.error({ sfu: target.label, err: loaded }, 'cannot publish: the media room did not load');
      return null;
    }
    const publisher = new JanusPublisher(loaded, publisherDefaults(target, { ...DEFAULT_OUTLET, ...outlet }), log.child({ component: 'publish' }));
    return new RoomPublishing(publisher, frames((frame) => publisher.feed(frame)));
  }

  async stop(): Promise<void> {
    this.off();
    await this.publisher.stop();
  }
}
