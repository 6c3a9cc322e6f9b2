/**
 * Time bounds for the fleet: every pending request has a timeout (STYLE.md, rule 8), and a
 * free node sleeps until an event wakes it or its poll interval passes.
 */
import { FramehostError } from '../errors.ts';

/** `promise`, or a `timeout` FramehostError after `ms` (the operation itself is not cancelled). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new FramehostError('timeout', `${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * A wake-up call: `wait(ms, since)` resolves at the next `fire()` or after `ms`, whichever is
 * first, and at once if a fire came after the `mark` taken as `since`: an event that arrives
 * while the caller is still busy deciding to sleep is not lost (it cost a whole poll interval).
 */
export class Wakeup {
  private waiters = new Set<() => void>();
  private fired = 0;

  /** A point in the sequence of fires, to pass to `wait`. */
  get mark(): number {
    return this.fired;
  }

  fire(): void {
    this.fired++;
    const all = this.waiters;
    this.waiters = new Set();
    for (const w of all) w();
  }

  wait(ms: number, since: number = this.fired): Promise<void> {
    if (since !== this.fired) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The message of anything thrown, for log lines and coded errors. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
