/**
 * The inference worker's ONNX Runtime calls in flight (session creations, runs), and whether a
 * new one may begin. Each is one synchronous native call on the worker's thread (onnxruntime-node
 * makes it in a setImmediate), of seconds for a real network's session creation; a thread ended
 * inside one (worker.terminate(), or process.exit(), which ends every worker) aborts the whole
 * process once the call returns: SIGABRT, "terminate called after throwing an instance of
 * 'Napi::Error'". So a close stops new calls, waits for the one under way, and only then lets
 * the worker answer `closed`, after which the main thread ends the thread; and the count of
 * calls under way is in shared memory, where the main thread can read it (nativeCallUnderway).
 */
import { FramehostError } from '../errors.ts';
import type { OnnxSession } from '../gpu/session.ts';
import { CONTROL_CLOSE, CONTROL_NATIVE } from './protocol.ts';

/** The worker's side: its calls, counted in `control` (the worker's shared slots). */
export class NativeCalls {
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly control: Int32Array) {}

  /**
   * True once the close was asked for: no call begins any more. The main thread's flag counts
   * too: the close message waits for the worker's event loop, and a load goes from one native
   * call to the next without yielding to it (a promise's continuation).
   */
  get closing(): boolean {
    return this.closed || Atomics.load(this.control, CONTROL_CLOSE) === 1;
  }

  /** Makes the call unless closing (then a `shutting_down` rejection, and no native call at all). */
  begin<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new FramehostError('shutting_down', `${what}: the worker is closing`));
    Atomics.add(this.control, CONTROL_NATIVE, 1);
    const p = call();
    this.inFlight.add(p);
    const done = (): void => {
      this.inFlight.delete(p);
      Atomics.sub(this.control, CONTROL_NATIVE, 1);
    };
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

/** The main thread's side: the shared slots of every live inference worker (inference.actor.ts adds them). */
const workers = new Set<Int32Array>();

/** Count this worker's calls in nativeCallUnderway() until the returned function is called (at its exit). */
export function watchNativeCalls(control: Int32Array): () => void {
  workers.add(control);
  return () => void workers.delete(control);
}

/** Whether an inference worker of this process is inside (or about to enter) an ONNX Runtime call. */
export function nativeCallUnderway(): boolean {
  for (const control of workers) if (Atomics.load(control, CONTROL_NATIVE) > 0) return true;
  return false;
}
