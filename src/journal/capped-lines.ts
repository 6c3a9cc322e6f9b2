/**
 * A session's journal lines under its size cap: past the cap less a reserve, one `truncated`
 * line and then only the tail (the last frame, the end), which must still fit in the cap.
 */
import type { Logger } from 'pino';
import type { JournalLine } from './format.ts';

/** Room kept under the session cap for the lines written after it is reached (truncated, last frame, end). */
export const TAIL_RESERVE = 4096;

export interface LineSink {
  write(text: string): void;
}

export class CappedLines {
  private bytes = 0;
  private cut = false;
  /** A line JSON could not hold was already logged (once per session). */
  private unwritable = false;

  constructor(
    private readonly file: LineSink,
    private readonly maxBytes: number,
    private readonly log: Logger,
    private readonly sessionId: string,
    /** Where the session is (frames emitted, ms since it began), asked only for the `truncated` line. */
    private readonly where: () => { at: number; ms: number },
  ) {}

  /** Whether the cap was reached: the body lines are no longer written. */
  get truncated(): boolean {
    return this.cut;
  }

  /** A body line, or with `tail` one of the last lines (the last frame, the end), written past the reserve. */
  put(line: JournalLine, tail = false): void {
    let text: string;
    try {
      text = `${JSON.stringify(line)}\n`;
    } catch (err) {
      // A model's message that JSON cannot hold (a BigInt, a cycle): skip it, never throw into the session.
      if (!this.unwritable) this.log.warn({ err, sessionId: this.sessionId, line: line.type }, 'journal: a line could not be written as JSON and was skipped');
      this.unwritable = true;
      return;
    }
    const size = Buffer.byteLength(text);
    if (!tail) {
      if (this.cut) return;
      if (this.bytes + size > this.maxBytes - TAIL_RESERVE) {
        this.truncate();
        return;
      }
    } else if (this.bytes + size > this.maxBytes) return;
    this.bytes += size;
    this.file.write(text);
  }

  private truncate(): void {
    this.cut = true;
    const { at, ms } = this.where();
    const note = `${JSON.stringify({ type: 'truncated', at, bytes: this.bytes, ms } satisfies JournalLine)}\n`;
    this.bytes += Buffer.byteLength(note);
    this.file.write(note);
    this.log.warn({ sessionId: this.sessionId, bytes: this.bytes, maxSessionBytes: this.maxBytes }, 'journal: session size cap reached; the rest of the session is not recorded');
  }
}
