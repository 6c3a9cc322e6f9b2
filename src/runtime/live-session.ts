/**
 * The running session as the runtime counts it: frames, drops, inputs, the command state, when
 * its owner left, its child log and its journal. A new one per session, so nothing carries over.
 */
import type { Logger } from 'pino';
import { ControlValues } from '../model/controls.ts';
import type { SessionJournal } from '../journal/recorder.ts';

export class LiveSession {
  readonly controls = new ControlValues();
  private framesSeen = 0;
  private droppedSeen = 0;
  private inputsSeen = 0;
  /** When the owner left (ms since the epoch), for the countdown the clients show; null while present. */
  private leftAt: number | null = null;

  constructor(
    readonly id: string,
    /** The session's child logger, bound once the id exists. */
    readonly log: Logger,
    readonly journal?: SessionJournal,
  ) {}

  get frames(): number {
    return this.framesSeen;
  }

  get dropped(): number {
    return this.droppedSeen;
  }

  get inputs(): number {
    return this.inputsSeen;
  }

  get awayAt(): number | null {
    return this.leftAt;
  }

  addFrames(count: number): void {
    this.framesSeen += count;
  }

  addDropped(count: number): void {
    this.droppedSeen += count;
  }

  addInput(): void {
    this.inputsSeen++;
  }

  ownerPresent(present: boolean, now: number = Date.now()): void {
    this.leftAt = present ? null : now;
  }
}
