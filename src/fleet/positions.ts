/**
 * Queue positions. BullMQ has no position API, so a gateway reads the whole wait list (one
 * LRANGE through `queue.getRanges`, head first) and finds its own clients in it: one round
 * trip for all of them, ~10 ms at 10,000 waiting (MEASURED.md), where one LPOS per client
 * would cost a round trip each and O(n) in Redis each. Reads are throttled: the first change
 * is read at once, later ones at most every `debounceMs`, and a slow periodic read catches
 * anything an event missed.
 *
 * Positions only grow when a job goes back ahead of the others: BullMQ puts a stalled job (its
 * node was lost) back at the *head* of the wait list. A notice that grew says so.
 */
import type { Logger } from 'pino';
import type { QueueNotice } from './events.ts';
import { messageOf, withTimeout } from './deadline.ts';

/** 1-based positions of `ids` in a wait list read head first; ids not waiting are absent. */
export function positionsOf(waitHeadFirst: readonly string[], ids: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  if (ids.size === 0) return out;
  for (let i = 0; i < waitHeadFirst.length; i++) {
    const id = waitHeadFirst[i]!;
    if (ids.has(id)) {
      out.set(id, i + 1);
      if (out.size === ids.size) break;
    }
  }
  return out;
}

export interface PositionTrackerOptions {
  /** Read the wait list, head first. */
  readonly read: () => Promise<string[]>;
  /** Deliver a changed position to the client waiting on that job. */
  readonly deliver: (notice: QueueNotice) => void;
  readonly debounceMs: number;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Reports how long each read took, in seconds (for the metrics). */
  readonly observe?: (seconds: number, waiting: number) => void;
}

export class PositionTracker {
  private readonly last = new Map<string, number>();
  private readonly watched = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private inflight = false;
  private dirty = false;
  private lastRead = 0;
  private readonly periodic: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: PositionTrackerOptions) {
    this.periodic = setInterval(() => this.poke(), o.refreshMs);
    this.periodic.unref();
  }

  /** Follow this job's position (again, after a requeue: its old position is forgotten). */
  watch(jobId: string): void {
    this.watched.add(jobId);
    this.last.delete(jobId);
    this.poke();
  }

  unwatch(jobId: string): void {
    this.watched.delete(jobId);
    this.last.delete(jobId);
  }

  /** The last position told for this job, if it is watched. */
  positionOf(jobId: string): number | null {
    return this.last.get(jobId) ?? null;
  }

  get size(): number {
    return this.watched.size;
  }

  /** Something changed the line: read it soon (throttled). */
  poke(): void {
    if (this.closed || this.watched.size === 0) return;
    if (this.timer || this.inflight) {
      this.dirty = true;
      return;
    }
    const wait = Math.max(0, this.lastRead + this.o.debounceMs - performance.now());
    this.timer = setTimeout(() => void this.refresh(), wait);
  }

  private async refresh(): Promise<void> {
    this.timer = null;
    if (this.closed || this.watched.size === 0) return;
    this.inflight = true;
    this.dirty = false;
    this.lastRead = performance.now();
    try {
      const started = performance.now();
      const wait = await withTimeout(this.o.read(), this.o.timeoutMs, 'read the wait list');
      this.o.observe?.((performance.now() - started) / 1000, wait.length);
      const positions = positionsOf(wait, this.watched);
      for (const [jobId, position] of positions) {
        if (!this.watched.has(jobId)) continue; // assigned while we were reading
        const previous = this.last.get(jobId);
        if (previous === position) continue;
        this.last.set(jobId, position);
        this.o.deliver({ jobId, position, waiting: wait.length, ...(previous !== undefined && position > previous ? { grewBecause: 'requeued' as const } : {}) });
      }
    } catch (err) {
      this.o.log.warn({ err: messageOf(err) }, 'fleet: reading queue positions failed');
    } finally {
      this.inflight = false;
      if (this.dirty) this.poke();
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.periodic);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
