/** Lets a repeated notice through at most once per interval (a flood of refusals logs one line a second). */
export class OncePer {
  private last = 0;

  constructor(private readonly intervalMs: number) {}

  /** True, and the interval restarts, when more than the interval has passed since the last true. */
  due(now: number = Date.now()): boolean {
    if (now - this.last <= this.intervalMs) return false;
    this.last = now;
    return true;
  }
}
