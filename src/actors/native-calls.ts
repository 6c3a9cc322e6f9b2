/**
 * The inference worker's ONNX Runtime calls in flight (session creations, runs), and whether a
 * new one may begin. Each is one synchronous native call on the worker's thread (onnxruntime-node
 * makes it in a setImmediate), of seconds for a real network's session creation; a thread ended
 * inside one (worker.terminate()) aborts the whole process: SIGABRT, "terminate called after
 * throwing an instance of 'Napi::Error'". So a close stops new calls, waits for the one under way,
 * and only then lets the worker answer `closed`, after which the main thread ends the thread.
 */
import { FramehostError } from '../errors.ts';
import type { OnnxSession } from '../gpu/session.ts';

export class NativeCalls {
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  /**
   * `closeRequested`: the main thread's flag, set when it sends the close. The message waits for
   * the worker's event loop, and a load goes from one native call to the next without yielding
   * to it (a promise's continuation): the flag stops the next one in time.
   */
  constructor(private readonly closeRequested: () => boolean) {}

  /** True once the close was asked for: no call begins any more. */
  get closing(): boolean {
    return this.closed || this.closeRequested();
  }

  /** Makes the call unless closing (then a `shutting_down` rejection, and no native call at all). */
  begin<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new FramehostError('shutting_down', `${what}: the worker is closing`));
    const p = call();
    this.inFlight.add(p);
    const done = (): void => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Every `run` of the session goes through begin(). */
  guardRuns(s: OnnxSession): void {
    const run = s.session.run.bind(s.session) as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(s.session, 'run', { value: (...args: unknown[]) => this.begin('run', () => run(...args)), configurable: true });
  }

  /** No new call from now on; resolves once none is in flight (their outcomes are their callers'). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
