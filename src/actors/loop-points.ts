/**
 * Where, in a session's loop, each command took effect and each input frame was read, and, in
 * replay, the same points played back.
 *
 * A point is named by counters the loop itself advances, never by wall time: `check` counts the
 * loop's shouldStop() calls (the only place commands are applied while a loop runs), `read`
 * counts the reads of one input track (latest() and next() together), `at` is the frame index
 * (frames emitted so far). A deterministic loop given the same commands at the same checks and
 * the same input frames at the same reads emits the same frames, whatever the timing was live.
 */
import type { InputFrame } from '../model/api.ts';

export type LoopPoint =
  | { readonly kind: 'command'; readonly requestId: string; readonly at: number; readonly check: number }
  | { readonly kind: 'read'; readonly track: string; readonly seq: number; readonly read: number; readonly at: number };

/** The live side: collects points until they ride along with the next posted frame. */
export class PointLog {
  private pending: LoopPoint[] = [];
  /** shouldStop() calls in this session, and the first one that returned true. */
  checks = 0;
  stopCheck: number | undefined;
  private readonly reads = new Map<string, { count: number; seq: number }>();

  command(requestId: string, at: number): void {
    this.pending.push({ kind: 'command', requestId, at, check: this.checks });
  }

  /** Count a read of `track`; a frame the loop had not seen yet becomes a point. */
  read(track: string, frame: InputFrame | null, at: number): InputFrame | null {
    let r = this.reads.get(track);
    if (!r) this.reads.set(track, (r = { count: 0, seq: 0 }));
    r.count++;
    if (frame && frame.seq !== r.seq) {
      r.seq = frame.seq;
      this.pending.push({ kind: 'read', track, seq: frame.seq, read: r.count, at });
    }
    return frame;
  }

  /** The points collected since the last take, or undefined when there are none. */
  take(): LoopPoint[] | undefined {
    if (this.pending.length === 0) return undefined;
    const out = this.pending;
    this.pending = [];
    return out;
  }
}

export interface ReplayCommand {
  readonly check: number;
  readonly requestId: string;
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface ReplayRead {
  readonly track: string;
  readonly read: number;
  readonly seq: number;
  readonly t: number;
  /** The recorded bytes; null when the journal kept only their hash. */
  readonly data: Uint8Array | null;
}

/** What a replayed session does, at which points (built by src/journal/replay-script.ts). */
export interface ReplayScript {
  /** Sorted by check. */
  readonly commands: readonly ReplayCommand[];
  readonly reads: readonly ReplayRead[];
  /** shouldStop() returns true at this check (the live session was stopped there). */
  readonly stopCheck?: number;
  /** Or once this many frames were emitted (the live session ended without a recorded check). */
  readonly stopAtFrame?: number;
}

/** The replay side: hands out the recorded commands and input frames at their points. */
export class ReplayPlayer {
  private next = 0;
  private readonly reads = new Map<string, { count: number; last: ReplayRead | null; byRead: Map<number, ReplayRead> }>();

  constructor(private readonly script: ReplayScript) {
    for (const r of script.reads) this.track(r.track).byRead.set(r.read, r);
  }

  private track(name: string) {
    let t = this.reads.get(name);
    if (!t) this.reads.set(name, (t = { count: 0, last: null, byRead: new Map() }));
    return t;
  }

  /** The commands recorded at this check, in their recorded order. */
  commandsAt(check: number): ReplayCommand[] {
    const out: ReplayCommand[] = [];
    const list = this.script.commands;
    while (this.next < list.length && list[this.next]!.check <= check) out.push(list[this.next++]!);
    return out;
  }

  stopsAt(check: number, frames: number): boolean {
    return check === this.script.stopCheck || (this.script.stopAtFrame !== undefined && frames >= this.script.stopAtFrame);
  }

  /** A read of `track`: the frame recorded for this read if any, else what the loop saw last. */
  read(track: string, wantsFresh: boolean, spec: { width: number; height: number; format: InputFrame['format'] }): InputFrame | null {
    const t = this.track(track);
    t.count++;
    const recorded = t.byRead.get(t.count);
    if (recorded?.data) t.last = recorded;
    // next() returns only a frame newer than the last one; latest() returns the last one again.
    const r = recorded?.data ? recorded : wantsFresh ? null : t.last;
    if (!r?.data) return null;
    return { data: r.data.slice(), width: spec.width, height: spec.height, format: spec.format, seq: r.seq, t: r.t };
  }
}
